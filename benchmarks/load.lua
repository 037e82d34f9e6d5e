-- wrk script for benchmarks/load.py: random demo shoppers' feeds and random items' same-style lists, alternating,
-- and (when EVENTS_EVERY > 0) one POST /events in every EVENTS_EVERY requests with a unique event_id.
-- Reads the shoppers and items from the files load.py writes; prints one JSON line with the totals.
local threads = {}

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  users = lines(args[1])
  items = lines(args[2])
  events_every = tonumber(args[3] or "0")
  run = args[4] or "0"  -- event ids are unique per run: a repeated id would be (rightly) stored once
  -- each run draws its own shoppers and items (seeded by the run's id): a run that replayed the previous run's
  -- sequence would find its feeds in the service's feed cache and measure the cache, not the feed
  math.randomseed(id * 7919 + math.floor((tonumber(run) or 0) * 1000) % 1000003)
  n, acks, errors, statuses = 0, 0, 0, ""
end

function request()
  n = n + 1
  if events_every > 0 and n % events_every == 0 then
    local body = string.format('{"user_id":"load-%d","item_id":"%s","event":"click","event_id":"wrk-%s-%d-%d"}',
      id, items[math.random(#items)], run, id, n)
    return wrk.format("POST", "/events", {["Content-Type"] = "application/json"}, body)
  elseif n % 2 == 0 then
    return wrk.format("GET", "/users/" .. users[math.random(#users)] .. "/feed?k=10")
  else
    return wrk.format("GET", "/items/" .. items[math.random(#items)] .. "/similar?k=10")
  end
end

function response(status, headers, body)
  if status == 201 then
    acks = acks + 1
  elseif status >= 400 then
    errors = errors + 1
    if #statuses < 200 then statuses = statuses .. status .. " " end  -- which errors: "404 503 "
  end
end

function done(summary, latency, requests)
  local total_acks, total_errors, error_statuses = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_acks = total_acks + thread:get("acks")
    total_errors = total_errors + thread:get("errors")
    error_statuses = error_statuses .. thread:get("statuses")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.1f, "p90_ms": %.1f, "p99_ms": %.1f, ' ..
    '"max_ms": %.1f, "http_errors": %d, "http_error_statuses": "%s", "socket_errors": %d, ' ..
    '"events_acknowledged": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, total_errors, error_statuses, e.connect + e.read + e.write + e.timeout, total_acks))
end
