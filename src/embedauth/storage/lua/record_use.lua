-- KEYS: registration. ARGV: used ms, credential id or ''. Only moves forward; ignores a missing
-- registration, and a credential it does not hold (so no field outlives its credential).
local doc = redis.call('HGET', KEYS[1], 'doc')
if not doc then return 0 end
local at = tonumber(ARGV[1])
local used = redis.call('HGET', KEYS[1], 'used')
if not used or tonumber(used) < at then redis.call('HSET', KEYS[1], 'used', ARGV[1]) end
if ARGV[2] == '' then return 1 end
local held = false
local stored = cjson.decode(doc)
for _, kind in ipairs({'secrets', 'certificates'}) do
  for _, credential in ipairs(stored[kind]) do
    if credential['id'] == ARGV[2] then held = true end
  end
end
if not held then return 1 end
local field = 'used:' .. ARGV[2]
local last = redis.call('HGET', KEYS[1], field)
if not last or tonumber(last) < at then redis.call('HSET', KEYS[1], field, ARGV[1]) end
return 1
