-- Shared by the wrk scripts of scripts/bench.sh (wrk 4.x, LuaJIT).
--
-- Every thread counts the answers it did not expect (`bad`: a status other than 200, or a body
-- without the expected marker); `done()` prints one machine-readable line, prefixed BENCH_JSON,
-- with wrk's own figures and those counters. Secrets come from the environment, never from the
-- command line (which bench.sh prints).

local common = {}

local threads = {}
local next_id = 0

-- setup() runs in the main Lua state, once per thread, before the threads start.
function common.setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function common.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default ~= nil then return default end
    error(name .. " is not set")
  end
  return value
end

function common.read_lines(path)
  local lines = {}
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if line ~= "" then lines[#lines + 1] = line end
  end
  file:close()
  return lines
end

-- This thread's share of a file, streamed: every n-th non-empty line (n = BENCH_THREADS), so
-- threads never use the same line twice and a file of a hundred thousand lines is never held whole.
function common.thread_share(path, prefix)
  local threads = tonumber(common.env("BENCH_THREADS"))
  local id = wrk.thread:get("id")
  local share = {}
  local file = assert(io.open(path, "r"))
  local i = 0
  for line in file:lines() do
    if line ~= "" then
      if i % threads == id then share[#share + 1] = (prefix or "") .. line end
      i = i + 1
    end
  end
  file:close()
  assert(#share > 0, "no lines of " .. path .. " for this thread")
  return share
end

-- Per-thread counters, read back by done() through thread:get().
bad = 0
answered = 0
exhausted = 0

function common.check(status, body, marker)
  answered = answered + 1
  if status ~= 200 or (marker ~= nil and (body == nil or not body:find(marker, 1, true))) then
    bad = bad + 1
  end
end

local function json_number(value)
  if value ~= value or value == math.huge or value == -math.huge then return "null" end
  return string.format("%.3f", value)
end

function common.done(summary, latency, requests)
  local totals = { bad = 0, answered = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (tonumber(thread:get(name)) or 0)
    end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"seconds":%s,"rps":%s,"p50_ms":%s,"p90_ms":%s,"p99_ms":%s,"max_ms":%s,' ..
    '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"bad_answers":%d,"checked_answers":%d,"threads_exhausted":%d}\n',
    summary.requests, json_number(seconds), json_number(summary.requests / seconds),
    json_number(latency:percentile(50) / 1000), json_number(latency:percentile(90) / 1000),
    json_number(latency:percentile(99) / 1000), json_number(latency.max / 1000),
    e.status, e.connect, e.read, e.write, e.timeout, totals.bad, totals.answered, totals.exhausted))
end

return common
