-- wrk script for bench/run.py: POST a fixed body, print a machine-readable
-- summary line in done().
--   BENCH_BODY_BYTES  body size in bytes (default 256)
--   BENCH_BACKOFF_MS  if > 0, pause this many ms before the next request after
--                     a 503 (a publisher that backs off when told to, rather
--                     than hammering the daemon); 0 = closed loop, no pause
--   BENCH_PUB_DELAY_MS if > 0, pause this many ms before every request on a
--                     connection (an open-ish paced load: about
--                     connections * 1000 / (delay + latency) requests/s)
--   BENCH_RATE        if > 0, requests per second for each wrk thread: its
--                     connections take turns at slots 1/BENCH_RATE s apart
--                     (a connection waits for the next free slot; a thread
--                     that falls behind catches up by at most 100 ms), so
--                     the thread sends at most that rate, and that rate
--                     whenever one of its connections is free in time
--   BENCH_TOPICS      if > 0, spread the requests over that many topics:
--                     each thread appends ?topic=<BENCH_TOPIC_PREFIX>K to
--                     the URL's path, K cycling 0, 1, ... BENCH_TOPICS - 1
--                     request by request (default prefix "bench.t")
-- The summary line: requests (answers received), ok200 (of them, status 200
-- exactly), s503 (status 503), non2xx (wrk's count of status >= 400), the
-- socket errors, duration and latency percentiles.
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "256")
local backoff = tonumber(os.getenv("BENCH_BACKOFF_MS") or "0")
local pace = tonumber(os.getenv("BENCH_PUB_DELAY_MS") or "0")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local ntopics = tonumber(os.getenv("BENCH_TOPICS") or "0")
local topic_prefix = os.getenv("BENCH_TOPIC_PREFIX") or "bench.t"

wrk.method = "POST"
wrk.body = string.rep("x", size - 1) .. "\n"
wrk.headers["Content-Type"] = "application/octet-stream"

-- Every thread's script state is set up here (the main one's too, which
-- prints the summary in done()).
local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

-- With topics, the requests are formatted once per thread (init runs in
-- each thread's Lua state) and request() takes them in turn.
if ntopics > 0 then
    local reqs = {}
    local next_req = 0
    function init(args)
        for k = 0, ntopics - 1 do
            reqs[k] = wrk.format(nil, wrk.path .. "?topic=" .. topic_prefix .. k)
        end
    end
    request = function()
        local r = reqs[next_req]
        next_req = (next_req + 1) % ntopics
        return r
    end
end

-- Per thread (globals of the thread's own Lua state, read back by done()).
ok200 = 0
s503 = 0
local refused = false

response = function(status, headers, body)
    if status == 200 then
        ok200 = ok200 + 1
    elseif status == 503 then
        s503 = s503 + 1
        refused = true
    end
end

local now_ms
if rate > 0 then
    local ffi = require("ffi")
    ffi.cdef [[
        typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
        int clock_gettime(int clk_id, bench_timespec *tp);
    ]]
    local ts = ffi.new("bench_timespec")
    now_ms = function()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
end
local interval = rate > 0 and 1000 / rate or 0
local next_slot = nil

if backoff > 0 or pace > 0 or rate > 0 then
    delay = function()
        local d = pace
        if refused then
            refused = false
            d = math.max(backoff, pace)
        end
        if rate > 0 then
            local t = now_ms()
            local slot = next_slot or t
            if slot < t - 100 then
                slot = t - 100
            end
            next_slot = slot + interval
            d = math.max(d, slot - t)
        end
        return d
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    local ok, n503 = 0, 0
    for _, t in ipairs(threads) do
        ok = ok + (t:get("ok200") or 0)
        n503 = n503 + (t:get("s503") or 0)
    end
    io.write(string.format(
        "BENCH requests=%d ok200=%d s503=%d non2xx=%d connect=%d read=%d write=%d timeout=%d duration_us=%d p50_us=%d p99_us=%d\n",
        summary.requests, ok, n503, e.status, e.connect, e.read, e.write, e.timeout,
        summary.duration, latency:percentile(50), latency:percentile(99)))
end
