-- KEYS: seq, log, expiry, index. ARGV: entry JSON (without seq), feed channel.
-- One entry per kind and subject: a known one is merged (highest generation and issued_at, latest
-- expiry) and takes the new seq. Returns the new seq.
-- PUBLISH is not a key command, so it stays legal on a cluster; subscribers act on the message only
-- after the script (and so the write) has completed.
local seq = redis.call('INCR', KEYS[1])
local entry = cjson.decode(ARGV[1])
local key = entry['kind'] .. ':' .. entry['subject']
local old = redis.call('HGET', KEYS[4], key)
if old then
  local known = cjson.decode(old)
  entry['expires_ms'] = math.max(entry['expires_ms'], known['expires_ms'] or 0)
  entry['generation'] = math.max(entry['generation'], known['generation'] or 0)
  entry['issued_at'] = math.max(entry['issued_at'], known['issued_at'] or 0)
  if entry['client_id'] == cjson.null and known['client_id'] ~= nil then
    entry['client_id'] = known['client_id']
  end
  redis.call('ZREM', KEYS[2], old)
  redis.call('ZREM', KEYS[3], old)
end
entry['seq'] = seq
local member = cjson.encode(entry)
redis.call('ZADD', KEYS[2], seq, member)
redis.call('ZADD', KEYS[3], entry['expires_ms'], member)
redis.call('HSET', KEYS[4], key, member)
redis.call('PUBLISH', ARGV[2], seq)
return seq
