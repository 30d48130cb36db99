-- Atomic login: enforce the account's seat limit, create the session, count usage.
-- Every key is in the account's hash slot.
-- KEYS[1] sessions sorted set (member: session id, score: last use in ms)
-- KEYS[2] the new session's key
-- KEYS[3] the account's usage hash for today (logins, peak)
-- KEYS[4] the account's active-users set for today
-- ARGV[1] now (ms)          ARGV[2] idle expiry (ms)   ARGV[3] seat limit (-1: none)
-- ARGV[4] policy: deny_new | evict_oldest               ARGV[5] new session id
-- ARGV[6] new session value ARGV[7] session key prefix ARGV[8] invalidation channel
-- ARGV[9] user id           ARGV[10] usage retention (s)
-- Returns {1, live sessions, evicted ids...} or {0, live sessions} when denied.
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local sessions = KEYS[1]

-- Sessions idle past expiry no longer hold a seat (their own keys expired already).
redis.call('ZREMRANGEBYSCORE', sessions, '-inf', now - idle)
local live = redis.call('ZCARD', sessions)
-- The new session is the newest even when logins share a millisecond, so "oldest" is
-- never decided by the random session ids of a tie.
local score = now
local newest = redis.call('ZRANGE', sessions, -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then
  score = tonumber(newest[2]) + 0.001
end
local evicted = {}
if limit >= 0 and live >= limit then
  if ARGV[4] ~= 'evict_oldest' or limit == 0 then
    return {0, live}
  end
  local victims = redis.call('ZPOPMIN', sessions, live - limit + 1)
  for i = 1, #victims, 2 do
    local key = ARGV[7] .. victims[i]
    redis.call('DEL', key)
    redis.call('PUBLISH', ARGV[8], key)
    evicted[#evicted + 1] = victims[i]
  end
  live = live - #evicted
end

redis.call('ZADD', sessions, score, ARGV[5])
redis.call('PEXPIRE', sessions, idle)
redis.call('SET', KEYS[2], ARGV[6], 'PX', idle)
live = live + 1

redis.call('HINCRBY', KEYS[3], 'logins', 1)
local peak = tonumber(redis.call('HGET', KEYS[3], 'peak') or '0')
if live > peak then
  redis.call('HSET', KEYS[3], 'peak', live)
end
redis.call('EXPIRE', KEYS[3], ARGV[10])
redis.call('SADD', KEYS[4], ARGV[9])
redis.call('EXPIRE', KEYS[4], ARGV[10])

local result = {1, live}
for _, id in ipairs(evicted) do
  result[#result + 1] = id
end
return result
