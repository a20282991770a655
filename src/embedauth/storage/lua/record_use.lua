-- KEYS: registration. ARGV: used ms. Only moves forward; ignores a missing registration.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local used = redis.call('HGET', KEYS[1], 'used')
if used and tonumber(used) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'used', ARGV[1])
return 1
