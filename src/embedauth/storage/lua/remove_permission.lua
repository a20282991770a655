-- KEYS: permissions, holders. ARGV: name. -1: absent; n > 0: held n times; 0: removed.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held > 0 then return held end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
