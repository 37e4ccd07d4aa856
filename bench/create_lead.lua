-- wrk script: POST the reference's full Request Body, rotating over the keys listed
-- (one per line) in the file named by CIQ_BENCH_KEYS. Prints percentiles at the end.
local keys = {}
for line in io.lines(os.getenv("CIQ_BENCH_KEYS")) do
  if #line > 0 then keys[#keys + 1] = line end
end
local body = '{"lead": {"name": "Jane Doe", "email": "jane@example.com", "phone": "15551234567", '
  .. '"source": "Website Form", "industry": "Technology", "score": 7, "status": "contacted", '
  .. '"monthly_revenue": 50000, "budget": 10000, "description": "Interested in AI calling"}}'
local i = math.random(1, 1000)

request = function()
  i = i + 1
  local key = keys[(i % #keys) + 1]
  return wrk.format("POST", "/api/external/leads/create",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("CIQ_RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d p999_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
