-- Shared by the wrk scripts: a monotonic clock, realistic bank track events, unique message ids.
-- Loaded with dofile() from each script; every wrk thread has its own Lua state.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } ml_timespec;
int clock_gettime(int clk_id, ml_timespec *tp);
]]
local ts = ffi.new("ml_timespec")

local M = {}

function M.now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local EVENTS = {
  {"fund_purchase", "FND", "fund"}, {"deposit_open", "TDP", "time_deposit"},
  {"card_apply", "CRD", "credit_card"}, {"loan_quote", "LON", "consumer_loan"},
  {"wealth_page_view", "WMP", "wealth_product"}, {"transfer_out", "TRF", "transfer"},
}
local CHANNELS = {"mobile_app", "mini_program", "web", "branch_pad", "call_center"}
local RISK = {"R1", "R2", "R3", "R4", "R5"}
local OS = {{"iOS", "17.5"}, {"Android", "14"}, {"HarmonyOS", "4.2"}}

-- Customers of the bank's app: each has a customer number and one device.
local CUSTOMERS = 50000

-- The part of one event after its messageId: events of ~450-500 bytes of JSON.
local function event_rest(n, stamp)
  local kind = EVENTS[math.random(#EVENTS)]
  local os_ = OS[math.random(#OS)]
  local customer = math.random(1, CUSTOMERS)
  return string.format(
    '","userId":"C%09d","anonymousId":"dev-%08x","event":"%s","timestamp":"%s",'
      .. '"properties":{"product_code":"%s%06d","product_type":"%s","amount":%d.%02d,"currency":"CNY",'
      .. '"channel":"%s","branch_code":"BR%04d","risk_level":"%s","term_days":%d},'
      .. '"context":{"app":{"name":"mobile-bank","version":"8.%d.%d"},"os":{"name":"%s","version":"%s"},'
      .. '"ip":"10.%d.%d.%d"}}',
    customer, (customer * 2654435761) % 0x100000000, kind[1], stamp,
    kind[2], math.random(0, 999999), kind[3], math.random(1, 500000), math.random(0, 99),
    CHANNELS[math.random(#CHANNELS)], math.random(1, 800), RISK[math.random(#RISK)],
    ({30, 90, 180, 365, 730})[math.random(5)],
    math.random(0, 9), math.random(0, 20), os_[1], os_[2],
    math.random(0, 255), math.random(0, 255), math.random(1, 254), n)
end

-- `count` distinct event bodies (everything after the messageId) to pick from.
function M.event_pool(count, seed)
  math.randomseed(seed)
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local pool = {}
  for i = 1, count do
    pool[i] = event_rest(i, stamp)
  end
  return pool
end

-- A UUID-shaped id, unique per (nonce, thread, sequence number).
function M.message_id(nonce, tid, seq)
  return string.format("%08x-%04x-4000-8000-%012x", nonce, tid, seq)
end

M.sent_at = os.date("!%Y-%m-%dT%H:%M:%S.000Z")

-- Per-thread bookkeeping read back by done(): first send, last response, late sends.
function M.report(threads, summary, latency)
  local first, last, late = nil, 0, 0
  for _, t in ipairs(threads) do
    local f, l = t:get("first_ms"), t:get("last_ms")
    if f and (first == nil or f < first) then first = f end
    if l and l > last then last = l end
    late = late + (t:get("late") or 0)
  end
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"non_2xx":%d', e.status),
    string.format('"socket_errors":%d', e.connect + e.read + e.write),
    string.format('"timeouts":%d', e.timeout),
    string.format('"window_s":%.4f', ((last or 0) - (first or 0)) / 1000),
    string.format('"late":%d', late),
    string.format('"p50_us":%d', latency:percentile(50)),
    string.format('"p90_us":%d', latency:percentile(90)),
    string.format('"p99_us":%d', latency:percentile(99)),
    string.format('"p999_us":%d', latency:percentile(99.9)),
    string.format('"max_us":%d', latency.max),
  }
  io.write("WRK_RESULT {" .. table.concat(parts, ",") .. "}\n")
end

return M
