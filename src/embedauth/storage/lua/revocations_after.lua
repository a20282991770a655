-- KEYS: log, expiry. ARGV: seq, now ms. Purges expired entries; returns those after seq, in order.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
for _, member in ipairs(gone) do redis.call('ZREM', KEYS[1], member) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
