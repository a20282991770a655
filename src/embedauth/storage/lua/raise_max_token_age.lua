-- KEYS: max age. ARGV: seconds. Raises the stored value to at least ARGV[1]; returns it.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return current
