-- Forgets one dead letter. KEYS: entry:{id}, index, tenant:{tenant}. ARGV: event id.
-- Returns 1 if it was there.
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return redis.call('DEL', KEYS[1])
