-- wrk script for bench_collector.py: POST /v1/events, cycling through pre-generated bodies.
--
--   wrk -s post_bodies.lua http://127.0.0.1:PORT -- BODIES_FILE API_KEY
--
-- BODIES_FILE holds one JSON body per line (an event, or an array of events). Every request
-- is formatted once per thread in init(); request() only hands out the next one. Statuses are
-- counted per thread and printed by done() as "STATUS <code> <count>" lines, so the caller
-- can count 202s (all accepted) apart from 207/4xx/5xx.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local prepared = {}
local n = 0
local i = 0
statuses = {}

function init(args)
  local path, key = args[1], args[2]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      prepared[n] = wrk.format("POST", "/v1/events", headers, line)
    end
  end
  if n == 0 then
    error("no bodies in " .. path)
  end
  -- Threads start at different offsets, so they do not send the same body in lockstep.
  i = (id * 97) % n
end

function request()
  i = i % n + 1
  return prepared[i]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("STATUS %d %d\n", status, count))
  end
  io.write(string.format("SOCKET_ERRORS %d %d %d %d %d\n", summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
  io.write(string.format("DURATION_US %d\n", summary.duration))
end
