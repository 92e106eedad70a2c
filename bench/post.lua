-- wrk script for bench/run.sh: POST a fixed body, print a machine-readable
-- summary line in done().
--   BENCH_BODY_BYTES  body size in bytes (default 256)
--   BENCH_BACKOFF_MS  if > 0, pause this many ms before the next request after
--                     a 503 (a publisher that backs off when told to, rather
--                     than hammering the daemon); 0 = closed loop, no pause
--   BENCH_PUB_DELAY_MS if > 0, pause this many ms before every request on a
--                     connection (an open-ish paced load: about
--                     connections * 1000 / (delay + latency) requests/s)
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "256")
local backoff = tonumber(os.getenv("BENCH_BACKOFF_MS") or "0")

wrk.method = "POST"
wrk.body = string.rep("x", size - 1) .. "\n"
wrk.headers["Content-Type"] = "application/octet-stream"

local pace = tonumber(os.getenv("BENCH_PUB_DELAY_MS") or "0")

if backoff > 0 or pace > 0 then
    local refused = false
    response = function(status, headers, body)
        if status == 503 then
            refused = true
        end
    end
    delay = function()
        if refused then
            refused = false
            return math.max(backoff, pace)
        end
        return pace
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d duration_us=%d p50_us=%d p99_us=%d\n",
        summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
        summary.duration, latency:percentile(50), latency:percentile(99)))
end
