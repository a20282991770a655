-- KEYS: log, expiry, index. ARGV: seq, now ms. Purges expired entries; returns those after seq, in order.
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
for _, member in ipairs(gone) do
  redis.call('ZREM', KEYS[1], member)
  local ok, entry = pcall(cjson.decode, member)
  if ok and type(entry) == 'table' and entry['kind'] and entry['subject'] then
    local key = entry['kind'] .. ':' .. entry['subject']
    if redis.call('HGET', KEYS[3], key) == member then redis.call('HDEL', KEYS[3], key) end
  end
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
