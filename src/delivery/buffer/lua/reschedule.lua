-- Acknowledges and deletes a stream entry and puts it back into the zset with its
-- next due time; nothing if the entry was no longer pending (claimed or purged).
-- KEYS: stream, delayed. ARGV: group, stream id, entry JSON, due ms, key TTL ms.
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if n == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
