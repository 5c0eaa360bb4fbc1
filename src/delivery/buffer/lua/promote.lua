-- Moves due entries of a shard from the delayed zset into the stream.
-- KEYS: delayed, stream. ARGV: now ms, batch size, key TTL ms.
-- Returns how many members were taken out of the zset.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  -- A member the relay did not write (it does not decode to an entry) is dropped, so
  -- it can never stall the shard.
  local ok, e = pcall(cjson.decode, m)
  local whole = ok and type(e) == 'table'
  if whole then
    for _, f in ipairs({'id', 'tenant', 'channel', 'conv', 'attempts', 'due', 'first', 'payload'}) do
      if type(e[f]) ~= 'string' then whole = false end
    end
  end
  if whole then
    redis.call('XADD', KEYS[2], '*', 'id', e.id, 'tenant', e.tenant, 'channel', e.channel,
      'conv', e.conv, 'attempts', e.attempts, 'due', e.due, 'first', e.first, 'payload', e.payload)
  end
  redis.call('ZREM', KEYS[1], m)
end
if #due > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return #due
