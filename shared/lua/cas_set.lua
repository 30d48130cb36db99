-- Compare-and-set on a msgpack record's "version" field.
-- KEYS[1]  the record key
-- ARGV[1]  the new record's version (integer)
-- ARGV[2]  the new record (msgpack map with a "version" field)
-- ARGV[3]  invalidation channel ("" to skip the announcement)
-- Returns 1 when written, 0 when the stored record is as new or newer.
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cmsgpack.unpack, current)
  if ok and type(decoded) == 'table' and decoded['version'] ~= nil then
    if tonumber(decoded['version']) >= tonumber(ARGV[1]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], KEYS[1])
end
return 1
