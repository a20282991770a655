-- KEYS: epoch, seq, max age. ARGV: a new random epoch, used only if the log has none (a new or
-- emptied store). Returns {epoch, seq, max age}.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0'}
