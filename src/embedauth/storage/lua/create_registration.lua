-- KEYS: registration. ARGV: doc, version, used ms or ''. 1: created; 0: the id is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'version', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'used', ARGV[3]) end
return 1
