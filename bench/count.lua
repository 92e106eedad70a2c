-- wrk script for bench/run.py's fixed-count fan-out (steps 3, 11, 12):
-- publish exactly BENCH_COUNT messages, as fast as they are accepted, then
-- stop. A 503 (back-pressure) is retried, on the same connection, after
-- BENCH_BACKOFF_MS; it is not counted as published.
--   BENCH_COUNT       the messages to have answered 200, over all threads
--   BENCH_THREADS     wrk's -t (to split BENCH_COUNT between the threads)
--   BENCH_BODY_BYTES  body size in bytes (default 256; the body is
--                     post.lua's: "x" repeated, then a newline)
--   BENCH_BACKOFF_MS  pause before retrying after a 503 (default 0)
-- Each connection reserves a message before it sends (in delay()); once
-- every message of the thread is answered 200 or reserved, the connection
-- parks (an hour's delay), so no request beyond the count is sent. When the
-- thread's last message is answered 200 (or given up on: an answer neither
-- 200 nor 503 is counted, not retried) it prints
--   BENCH_DONE <CLOCK_REALTIME seconds>
-- and stops its event loop; the first request sent prints
--   BENCH_FIRST <CLOCK_REALTIME seconds>
-- The caller sends wrk SIGINT once every thread is done, so that wrk prints
-- its summary at once instead of waiting out -d (a bound, not a duration).
-- The summary line, as post.lua's: "BENCH requests=... ok200=... s503=...
-- other=... ..." (requests: answers received).
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "256")
local count = tonumber(os.getenv("BENCH_COUNT") or "0")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local backoff = tonumber(os.getenv("BENCH_BACKOFF_MS") or "0")

wrk.method = "POST"
wrk.body = string.rep("x", size - 1) .. "\n"
wrk.headers["Content-Type"] = "application/octet-stream"

local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_count_timespec;
    int clock_gettime(int clk_id, bench_count_timespec *tp);
]]
local ts = ffi.new("bench_count_timespec")
local function realtime()
    ffi.C.clock_gettime(0, ts) -- CLOCK_REALTIME, as nginx's $msec
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
    thread:set("id", #threads)
    table.insert(threads, thread)
end

-- Per thread (globals of the thread's own Lua state, read back by done()).
ok200 = 0
s503 = 0
other = 0
local share = 0
local reserved = 0 -- sent or about to be, not yet answered
local first = true
local retry = false
local finished = false

function init(args)
    local k = id or 0
    share = math.floor(count / nthreads) + ((k < count % nthreads) and 1 or 0)
    if share == 0 then
        finished = true
    end
end

delay = function()
    if finished or ok200 + other + reserved >= share then
        return 3600000
    end
    reserved = reserved + 1
    if first then
        first = false
        io.write(string.format("BENCH_FIRST %.6f\n", realtime()))
        io.flush()
    end
    if retry then
        retry = false
        return backoff
    end
    return 0
end

response = function(status, headers, body)
    if finished then
        return
    end
    reserved = reserved - 1
    if status == 200 then
        ok200 = ok200 + 1
    elseif status == 503 then
        s503 = s503 + 1
        retry = true
    else
        other = other + 1
    end
    if ok200 + other >= share then
        finished = true
        io.write(string.format("BENCH_DONE %.6f\n", realtime()))
        io.flush()
        wrk.thread:stop()
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    local ok, n503, n_other = 0, 0, 0
    for _, t in ipairs(threads) do
        ok = ok + (t:get("ok200") or 0)
        n503 = n503 + (t:get("s503") or 0)
        n_other = n_other + (t:get("other") or 0)
    end
    io.write(string.format(
        "BENCH requests=%d ok200=%d s503=%d other=%d non2xx=%d connect=%d read=%d write=%d timeout=%d duration_us=%d p50_us=%d p99_us=%d\n",
        summary.requests, ok, n503, n_other, e.status, e.connect, e.read, e.write, e.timeout,
        summary.duration, latency:percentile(50), latency:percentile(99)))
end
