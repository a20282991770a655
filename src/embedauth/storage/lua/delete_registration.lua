-- KEYS: registration. Returns the document deleted, or nil.
local doc = redis.call('HGET', KEYS[1], 'doc')
if doc then redis.call('DEL', KEYS[1]) end
return doc
