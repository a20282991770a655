-- KEYS: holders. ARGV: scopes.
for _, name in ipairs(ARGV) do
  if redis.call('HINCRBY', KEYS[1], name, -1) <= 0 then redis.call('HDEL', KEYS[1], name) end
end
return 0
