-- wrk script: GET (the path given on the command line); prints percentiles.
done = function(summary, latency, requests)
  io.write(string.format("CIQ_RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d p999_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
