-- KEYS: permissions, holders. ARGV: scopes. Counts them held if all exist; returns the missing ones.
local missing = {}
for _, name in ipairs(ARGV) do
  if redis.call('HEXISTS', KEYS[1], name) == 0 then missing[#missing + 1] = name end
end
if #missing == 0 then
  for _, name in ipairs(ARGV) do redis.call('HINCRBY', KEYS[2], name, 1) end
end
return missing
