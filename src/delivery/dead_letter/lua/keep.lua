-- Keeps a given-up event in its shard's dead-letter list until its expiry.
-- KEYS: entry:{id}, index, tenant:{tenant} (one shard: one hash tag, one slot).
-- ARGV: event id, record JSON, expiry ms, now ms. The two zsets are scored by expiry;
-- members past it are pruned here, and each zset lives as long as its last member.
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[4])
if ttl < 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
for i = 2, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])
  redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
