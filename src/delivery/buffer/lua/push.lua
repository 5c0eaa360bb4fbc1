-- Adds an entry to its shard, once (the pending marker), behind its conversation's
-- head when ordered.
-- KEYS: delayed, pending:{id}, head:{conv}, parked:{conv}, tenant:{tenant}.
-- ARGV: id, entry JSON, due ms, first-seen ms, key TTL ms, ordered ('1' or '0'),
-- how many more of this tenant's events this shard may hold ('' = no limit).
-- Returns 0 already buffered, 1 scheduled, 2 parked, 3 refused (the tenant is full).
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if ARGV[7] ~= '' and redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[7]) then return 3 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[5], ARGV[5])
if ARGV[6] == '1' then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('RPUSH', KEYS[4], ARGV[2])
    redis.call('PEXPIRE', KEYS[4], ARGV[5])
    return 2
  end
  redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[5])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
