-- Removes one entry from a shard, searching one bounded step per call, so no call
-- holds Redis for long. KEYS: stream, delayed. ARGV: group, event id, shard prefix,
-- conversation hash (or ''), key TTL ms, now ms, phase ('z': ZSCAN of delayed; 's':
-- XRANGE of the stream; 'p': the conversation's parked list), cursor (ZSCAN cursor;
-- last stream id seen, '-' first; parked index), step. Like COMPLETE, a removed head
-- hands over to the next parked event of its conversation.
-- Returns {1 if it was removed, -1 if it is not buffered at all, else 0; next phase
-- ('' when done); next cursor}.
local p = ARGV[3]
local phase, cursor, step = ARGV[7], ARGV[8], tonumber(ARGV[9])
if redis.call('EXISTS', p .. 'pending:' .. ARGV[2]) == 0 then return {-1, '', ''} end
local found = nil
if phase == 'z' then
  local r = redis.call('ZSCAN', KEYS[2], cursor, 'COUNT', step)
  local items = r[2]
  for i = 1, #items, 2 do
    local ok, e = pcall(cjson.decode, items[i])
    if ok and e.id == ARGV[2] then
      redis.call('ZREM', KEYS[2], items[i])
      found = e
      break
    end
  end
  if r[1] == '0' then phase, cursor = 's', '-' else cursor = r[1] end
elseif phase == 's' then
  local entries = {}
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local from = '-'
    if cursor ~= '-' then from = '(' .. cursor end
    entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', step)
  end
  for _, s in ipairs(entries) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.id == ARGV[2] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      found = f
      break
    end
  end
  if #entries < step then phase, cursor = 'p', '0' else cursor = entries[#entries][1] end
else
  local parked = p .. 'parked:' .. ARGV[4]
  local from = tonumber(cursor)
  local items = {}
  if ARGV[4] ~= '' then items = redis.call('LRANGE', parked, from, from + step - 1) end
  for _, m in ipairs(items) do
    local e = cjson.decode(m)
    if e.id == ARGV[2] then
      redis.call('LREM', parked, 1, m)
      found = e
      break
    end
  end
  if #items < step then phase, cursor = '', '' else cursor = tostring(from + step) end
end
if not found then return {0, phase, cursor} end
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
return {1, '', ''}
