-- Compare-and-set of many msgpack records at once (a rebuild of the view), unannounced.
-- KEYS[i]          the i-th record key
-- ARGV[2i-1]       its version (integer)
-- ARGV[2i]         its record (msgpack map with a "version" field)
-- A record is written where there is none, or where the stored one is older.
-- Returns how many were written.
local written = 0
for i, key in ipairs(KEYS) do
  local version = tonumber(ARGV[2 * i - 1])
  local current = redis.call('GET', key)
  local older = true
  if current then
    local ok, decoded = pcall(cmsgpack.unpack, current)
    if ok and type(decoded) == 'table' and decoded['version'] ~= nil then
      older = tonumber(decoded['version']) < version
    end
  end
  if older then
    redis.call('SET', key, ARGV[2 * i])
    written = written + 1
  end
end
return written
