-- KEYS: seq, log, expiry. ARGV: entry JSON, expires ms, feed channel. Returns the new seq.
-- PUBLISH is not a key command, so it stays legal on a cluster; subscribers act on the message only
-- after the script (and so the write) has completed.
local seq = redis.call('INCR', KEYS[1])
local entry = cjson.decode(ARGV[1])
entry['seq'] = seq
local member = cjson.encode(entry)
redis.call('ZADD', KEYS[2], seq, member)
redis.call('ZADD', KEYS[3], ARGV[2], member)
redis.call('PUBLISH', ARGV[3], seq)
return seq
