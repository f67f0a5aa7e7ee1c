-- POST /v1/batch with `per_request` Segment track events, each with a fresh messageId, for
-- `send_seconds`; then every connection goes idle so nothing is in flight when wrk stops.
-- Optional `rate` (requests/s per thread, 0 = as fast as the server answers) paces sends on a
-- fixed schedule, so a slow answer does not hide later latency (coordinated omission).
-- Args after `--`: <authorization header> <nonce> <send_seconds> <per_request> [rate]
local common = dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function init(args)
  auth = args[1]
  nonce = tonumber(args[2])
  deadline = common.now_ms() + tonumber(args[3]) * 1000
  per_request = tonumber(args[4])
  local rate = tonumber(args[5] or "0")
  interval = rate > 0 and 1000 / rate or 0
  pool = common.event_pool(512, nonce + tid)
  seq, late, last_ms, first_ms, next_slot = 0, 0, 0, nil, nil
  headers = {["Authorization"] = auth, ["Content-Type"] = "application/json"}
  path = wrk.path
  parts = {}
end

function delay()
  local now = common.now_ms()
  first_ms = first_ms or now
  last_ms = now -- each connection calls delay() after each answer: the last call is the last answer
  if now >= deadline then
    return 3600000
  end
  if interval == 0 then
    return 0
  end
  next_slot = (next_slot or now) + interval
  local wait = next_slot - now
  if wait < 0 then
    if wait < -1 then late = late + 1 end
    return 0
  end
  return math.floor(wait)
end

function request()
  local n = 0
  local npool = #pool
  if per_request == 0 then
    -- one event on its own endpoint (/v1/track)
    seq = seq + 1
    local body = '{"type":"track","messageId":"' .. common.message_id(nonce, tid, seq) .. pool[math.random(npool)]
    return wrk.format("POST", path, headers, body)
  end
  n = n + 1; parts[n] = '{"sentAt":"' .. common.sent_at .. '","batch":['
  for i = 1, per_request do
    seq = seq + 1
    n = n + 1; parts[n] = (i == 1 and '{"type":"track","messageId":"' or ',{"type":"track","messageId":"')
    n = n + 1; parts[n] = common.message_id(nonce, tid, seq)
    n = n + 1; parts[n] = pool[math.random(npool)]
  end
  n = n + 1; parts[n] = "]}"
  return wrk.format("POST", path, headers, table.concat(parts, "", 1, n))
end

function done(summary, latency, requests)
  common.report(threads, summary, latency)
end
