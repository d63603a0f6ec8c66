-- Sends pre-signed epilot calls: every request carries its own webhook-id and a valid v1a signature,
-- so the replay guard is exercised, not bypassed. Threads take disjoint slices of the pool
-- (thread k sends entries k, k+T, k+2T, ...). Past the end it wraps around: those are replays and
-- come back as non-2xx, so an undersized pool shows up in the results instead of hiding.
--
-- Env: BENCH_POOL (lines "<webhook-id> <timestamp> <signature>"), BENCH_BODY (the body file),
--      BENCH_THREADS (wrk -t), BENCH_PATH (request path).

local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local ids, timestamps, signatures = {}, {}, {}
local size, next_index, step, body, path

function init(args)
  for line in io.lines(os.getenv("BENCH_POOL")) do
    local id, ts, sig = line:match("^(%S+) (%S+) (%S+)$")
    if id then
      size = (size or 0) + 1
      ids[size], timestamps[size], signatures[size] = id, ts, sig
    end
  end
  local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  body = file:read("*a")
  file:close()
  step = tonumber(os.getenv("BENCH_THREADS"))
  path = os.getenv("BENCH_PATH")
  next_index = thread_index
end

local headers = { ["content-type"] = "application/json" }
function request()
  local i = next_index % size + 1
  next_index = next_index + step
  headers["webhook-id"] = ids[i]
  headers["webhook-timestamp"] = timestamps[i]
  headers["webhook-signature"] = signatures[i]
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
