-- wrk script for bench/run.py step 9: POST /sendMessages, each request a
-- JSON array of BENCH_BATCH messages of BENCH_BODY_BYTES bytes each, and the
-- same machine-readable summary line in done() as post.lua's.
--   BENCH_BATCH       messages a request (default 100)
--   BENCH_BODY_BYTES  bytes of each message's body (default 256)
-- A body is BENCH_BODY_BYTES - 1 of "x" and a newline, as post.lua's: in
-- JSON the newline is written "\n", which /sendMessages reads back as one
-- byte.
local n = tonumber(os.getenv("BENCH_BATCH") or "100")
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "256")

local item = '{"body":"' .. string.rep("x", size - 1) .. '\\n"}'
local items = {}
for i = 1, n do
    items[i] = item
end

wrk.method = "POST"
wrk.body = "[" .. table.concat(items, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

ok200 = 0
s503 = 0

response = function(status, headers, body)
    if status == 200 then
        ok200 = ok200 + 1
    elseif status == 503 then
        s503 = s503 + 1
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
