-- Removes a channel's entries from one shard. KEYS: stream, delayed (the other keys
-- of the shard are built from ARGV[3], the shard's key prefix: same hash tag, same
-- slot). ARGV: group, channel, shard prefix, comma-separated ids to keep. XACK of an
-- entry in flight makes the worker's RESCHEDULE/COMPLETE of it a no-op.
-- Returns how many events were removed.
local keep = {}
for id in string.gmatch(ARGV[4], '[^,]+') do keep[id] = true end
local removed = 0
local convs = {}
local function forget(id, tenant, conv)
  redis.call('DEL', ARGV[3] .. 'pending:' .. id)
  redis.call('ZREM', ARGV[3] .. 'tenant:' .. tenant, id)
  if conv ~= '' then convs[conv] = true end
  removed = removed + 1
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = cjson.decode(m)
  if e.channel == ARGV[2] and not keep[e.id] then
    redis.call('ZREM', KEYS[2], m)
    forget(e.id, e.tenant, e.conv)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, s in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.channel == ARGV[2] and not keep[f.id] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      forget(f.id, f.tenant, f.conv or '')
    end
  end
end
for conv, _ in pairs(convs) do
  local parked = ARGV[3] .. 'parked:' .. conv
  for _, m in ipairs(redis.call('LRANGE', parked, 0, -1)) do
    local e = cjson.decode(m)
    forget(e.id, e.tenant, '')
  end
  redis.call('DEL', parked)
  redis.call('DEL', ARGV[3] .. 'head:' .. conv)
end
return removed
