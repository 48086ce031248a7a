-- cancel_customer.lua: cancels every job of one customer, found through the customer's
-- table bucket (bounded: a bucket holds about jobs/buckets rows).
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  table bucket of the customer (integer)
-- ARGV[2]  customer reference
-- Returns { cancelled ids..., "", in-flight ids... }: call ids (16 bytes) removed, then an
-- empty separator, then call ids that are leased (flagged cancelled, see cancel.lua).
local P = string.sub(KEYS[1], 1, -5)
local b = tonumber(ARGV[1])
local suffix = string.char(math.floor(b / 256), b % 256)
local rows = redis.call("HGETALL", P .. "t:" .. b)
local done, flying = {}, {}
for i = 1, #rows, 2 do
  if string.sub(rows[i + 1], 7) == ARGV[2] then
    local r = cancel_one(P, rows[i] .. suffix)
    if r == 1 then
      done[#done + 1] = rows[i]
    elseif r == 2 then
      flying[#flying + 1] = rows[i]
    end
  end
end
done[#done + 1] = ""
for _, id in ipairs(flying) do
  done[#done + 1] = id
end
return done
