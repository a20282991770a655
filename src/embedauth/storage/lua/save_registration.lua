-- KEYS: registration. ARGV: expected version, doc, version, then the ids of the credentials it
-- holds. {1, old doc} | {0}: stale | {-1}: absent. The last use of a credential no longer held
-- (its 'used:<id>' field) is dropped; the others are kept as they are.
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return {-1} end
if tonumber(version) ~= tonumber(ARGV[1]) then return {0} end
local old = redis.call('HGET', KEYS[1], 'doc')
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', ARGV[3])
local held = {}
for i = 4, #ARGV do held['used:' .. ARGV[i]] = true end
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 5) == 'used:' and not held[field] then redis.call('HDEL', KEYS[1], field) end
end
return {1, old}
