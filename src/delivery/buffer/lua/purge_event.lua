-- Removes one entry from a shard. KEYS: stream, delayed. ARGV: group, event id, shard
-- prefix, conversation hash (or ''), key TTL ms, now ms. Like COMPLETE, a removed head
-- hands over to the next parked event of its conversation. Returns 1 if it was there.
local p = ARGV[3]
if redis.call('EXISTS', p .. 'pending:' .. ARGV[2]) == 0 then return 0 end
local found = nil
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local e = cjson.decode(m)
  if e.id == ARGV[2] then
    redis.call('ZREM', KEYS[2], m)
    found = e
    break
  end
end
if not found and redis.call('EXISTS', KEYS[1]) == 1 then
  for _, s in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.id == ARGV[2] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      found = f
      break
    end
  end
end
if not found and ARGV[4] ~= '' then
  local parked = p .. 'parked:' .. ARGV[4]
  for _, m in ipairs(redis.call('LRANGE', parked, 0, -1)) do
    local e = cjson.decode(m)
    if e.id == ARGV[2] then
      redis.call('LREM', parked, 1, m)
      found = e
      break
    end
  end
end
if not found then return 0 end
redis.call('DEL', p .. 'pending:' .. ARGV[2])
redis.call('ZREM', p .. 'tenant:' .. found.tenant, ARGV[2])
local conv = found.conv or ''
if conv ~= '' then
  local head = p .. 'head:' .. conv
  if redis.call('GET', head) == ARGV[2] then
    local nxt = redis.call('LPOP', p .. 'parked:' .. conv)
    if nxt then
      local e = cjson.decode(nxt)
      redis.call('SET', head, e.id, 'PX', ARGV[5])
      redis.call('ZADD', KEYS[2], ARGV[6], nxt)
      redis.call('PEXPIRE', KEYS[2], ARGV[5])
    else
      redis.call('DEL', head)
    end
  end
end
return 1
