-- wrk script for every bench/run phase. With CIQ_BENCH_KEYS (a file of keys, one per
-- line): POST the reference's full Request Body to the create endpoint (or the body
-- and path bench/bulk gives), rotating over
-- the keys. Without it: wrk's own GET of the URL given (e.g. /healthz).
-- Each key's request is formatted once, up front, so that the load generator spends
-- its CPU on sending rather than on building strings (the machine is shared with the
-- gateway, PostgreSQL and Redis). Statuses >= 400 are counted by wrk itself
-- (errors.status). Prints percentiles at the end.
-- The body: CIQ_BENCH_BODY, a file (bench/run passes bench/lead.json, the reference's
-- Request Body, which oha sends too).
local body = ""
local body_file = os.getenv("CIQ_BENCH_BODY")
if body_file then
  local file = assert(io.open(body_file))
  body = file:read("*a"):gsub("%s+$", "")
  file:close()
end
local requests = {}
local keys = os.getenv("CIQ_BENCH_KEYS")
-- CIQ_BENCH_PATH: where the body goes (bench/bulk posts batches); create by default.
local path = os.getenv("CIQ_BENCH_PATH") or "/api/external/leads/create"
for line in (keys and io.lines(keys) or function() return nil end) do
  if #line > 0 then
    requests[#requests + 1] = wrk.format("POST", path,
      { ["Content-Type"] = "application/json", ["X-API-Key"] = line }, body)
  end
end
local i = math.random(1, 1000)

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
