-- End every session one end user holds on an account (the user was disabled or removed),
-- freeing their seats at once. Session keys share the account's hash slot.
-- KEYS[1] the account's sessions sorted set
-- ARGV[1] session key prefix   ARGV[2] user id   ARGV[3] invalidation channel
-- Returns how many sessions were ended.
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. sid
  local raw = redis.call('GET', key)
  local owner = nil
  if raw then
    local ok, decoded = pcall(cmsgpack.unpack, raw)
    if ok and type(decoded) == 'table' then
      owner = decoded['user']
    end
  end
  if owner == ARGV[2] or not raw then
    -- a session whose key expired no longer holds a seat either
    redis.call('ZREM', KEYS[1], sid)
    if raw then
      redis.call('DEL', key)
      redis.call('PUBLISH', ARGV[3], key)
      ended = ended + 1
    end
  end
end
return ended
