-- wrk script for every bench/run phase. With CIQ_BENCH_KEYS (a file of keys, one per
-- line): POST the reference's full Request Body to the create endpoint, rotating over
-- the keys. Without it: wrk's own GET of the URL given (e.g. /healthz).
-- Each key's request is formatted once, up front, so that the load generator spends
-- its CPU on sending rather than on building strings (the machine is shared with the
-- gateway, PostgreSQL and Redis). Statuses >= 400 are counted by wrk itself
-- (errors.status). Prints percentiles at the end.
local body = '{"lead": {"name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567", '
  .. '"source": "Website Form", "industry": "Technology", "score": 7, "status": "contacted", '
  .. '"monthly_revenue": 50000, "budget": 10000, "description": "Interested in AI calling"}}'
local requests = {}
local keys = os.getenv("CIQ_BENCH_KEYS")
for line in (keys and io.lines(keys) or function() return nil end) do
  if #line > 0 then
    requests[#requests + 1] = wrk.format("POST", "/api/external/leads/create",
      { ["Content-Type"] = "application/json", ["X-API-Key"] = line }, body)
  end
end
local i = math.random(1, 1000)

-- CIQ_BENCH_DELAY_MS: each connection pauses this long after every answer, to hold
-- the load near a chosen rate (bench/run uses it for "p99 at half of peak").
local pause = tonumber(os.getenv("CIQ_BENCH_DELAY_MS") or "")
if pause then
  delay = function() return pause end
end

if #requests > 0 then
  request = function()
    i = i + 1
    return requests[(i % #requests) + 1]
  end
end

done = function(summary, latency, requests)
  io.write(string.format("CIQ_RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d p999_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
