-- KEYS: registration. ARGV: expected version, doc, version. {1, old doc} | {0}: stale | {-1}: absent.
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {-1} end
if tonumber(version) ~= tonumber(ARGV[1]) then return {0} end
local old = redis.call('HGET', KEYS[1], 'doc')
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', ARGV[3])
return {1, old}
