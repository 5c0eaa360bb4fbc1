-- Acknowledges and forgets a delivered (or given up) stream entry; if it headed its
-- conversation, schedules the next parked entry (due now).
-- KEYS: stream, delayed, pending:{id}, head:{conv}, parked:{conv}, tenant:{tenant}.
-- ARGV: group, stream id, event id, key TTL ms, now ms.
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if n == 0 then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[6], ARGV[3])
if redis.call('GET', KEYS[4]) == ARGV[3] then
  local nxt = redis.call('LPOP', KEYS[5])
  if nxt then
    local e = cjson.decode(nxt)
    redis.call('SET', KEYS[4], e.id, 'PX', ARGV[4])
    redis.call('ZADD', KEYS[2], ARGV[5], nxt)
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  else
    redis.call('DEL', KEYS[4])
  end
end
return 1
