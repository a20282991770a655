-- KEYS: key. ARGV: now ms, expires ms, TTL ms. 1: consumed; 0: consumed before and not yet expired.
local until_ms = redis.call('GET', KEYS[1])
if until_ms and tonumber(until_ms) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
