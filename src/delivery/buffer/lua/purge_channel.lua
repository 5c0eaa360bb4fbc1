-- Removes a channel's entries from one shard, one bounded step per call, so no call
-- holds Redis for long. KEYS: stream, delayed (the other keys of the shard are built
-- from ARGV[3], the shard's key prefix: same hash tag, same slot). ARGV: group,
-- channel, shard prefix, comma-separated ids to keep, phase ('z': ZSCAN of delayed;
-- 's': XRANGE of the stream; 'q': the parked list of the conversation named by the
-- cursor), cursor (ZSCAN cursor; last stream id seen, '-' first; a conversation),
-- step (members, entries or parked events looked at). XACK of an entry in flight makes
-- the worker's RESCHEDULE/COMPLETE of it a no-op. A removed head's parked events go
-- with it, `step` of them per call at most: the conversations with more left are
-- returned, for 'q' calls.
-- Returns {removed, next phase ('' when done), next cursor, conversations left}.
local keep = {}
for id in string.gmatch(ARGV[4], '[^,]+') do keep[id] = true end
local phase, cursor, step = ARGV[5], ARGV[6], tonumber(ARGV[7])
local removed = 0
local convs = {}
local function forget(id, tenant, conv)
  redis.call('DEL', ARGV[3] .. 'pending:' .. id)
  redis.call('ZREM', ARGV[3] .. 'tenant:' .. tenant, id)
  if conv and conv ~= '' then convs[conv] = true end
  removed = removed + 1
end
-- Pops up to `budget` parked events of `conv`; whether some are left.
local function drain(conv, budget)
  local parked = ARGV[3] .. 'parked:' .. conv
  local items = redis.call('LPOP', parked, budget)
  if items then
    for _, m in ipairs(items) do
      local e = cjson.decode(m)
      forget(e.id, e.tenant, '')
    end
  end
  return redis.call('LLEN', parked) > 0
end
if phase == 'q' then
  if drain(cursor, step) then return {removed, 'q', cursor, {}} end
  return {removed, '', '', {}}
end
if phase == 'z' then
  local r = redis.call('ZSCAN', KEYS[2], cursor, 'COUNT', step)
  local items = r[2]
  for i = 1, #items, 2 do
    local m = items[i]
    local ok, e = pcall(cjson.decode, m)
    -- ZSCAN may return a member twice: only the call that removes it counts it.
    if ok and e.channel == ARGV[2] and not keep[e.id]
        and redis.call('ZREM', KEYS[2], m) == 1 then
      forget(e.id, e.tenant, e.conv)
    end
  end
  if r[1] == '0' then phase, cursor = 's', '-' else cursor = r[1] end
else
  local entries = {}
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local from = '-'
    if cursor ~= '-' then from = '(' .. cursor end
    entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', step)
  end
  for _, s in ipairs(entries) do
    local f = {}
    for i = 1, #s[2], 2 do f[s[2][i]] = s[2][i + 1] end
    if f.channel == ARGV[2] and not keep[f.id] then
      redis.pcall('XACK', KEYS[1], ARGV[1], s[1])
      redis.call('XDEL', KEYS[1], s[1])
      forget(f.id, f.tenant, f.conv)
    end
  end
  if #entries < step then phase, cursor = '', '' else cursor = entries[#entries][1] end
end
-- A conversation's parked events go with its head (one channel per conversation).
local left = {}
local budget = step
for conv, _ in pairs(convs) do
  redis.call('DEL', ARGV[3] .. 'head:' .. conv)
  local len = redis.call('LLEN', ARGV[3] .. 'parked:' .. conv)
  local n = math.min(budget, len)
  if n > 0 then
    drain(conv, n)
    budget = budget - n
  end
  if len > n then table.insert(left, conv) end
end
return {removed, phase, cursor, left}
