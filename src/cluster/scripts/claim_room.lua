-- Claims a room for a node, unless a live node owns it already.
-- KEYS[1]: the room's owner hash (owner, epoch, kind).
-- KEYS[2]: the nodes' heartbeats, a sorted set scored in milliseconds.
-- ARGV[1]: the claiming node; ARGV[2]: cluster.node_timeout_ms;
-- ARGV[3]: the kind of a room that does not exist yet.
-- Returns {owner, epoch, kind}. A new claim takes a new epoch, so the new
-- owner's frames are numbered apart from the last owner's: the time in
-- milliseconds, or one more than the last epoch, so that epochs grow even
-- when Redis lost the last one.
local owner = redis.call('HGET', KEYS[1], 'owner')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if owner then
  if owner == ARGV[1] then
    return {owner, redis.call('HGET', KEYS[1], 'epoch'), redis.call('HGET', KEYS[1], 'kind')}
  end
  local seen = redis.call('ZSCORE', KEYS[2], owner)
  if seen and tonumber(seen) >= ms - tonumber(ARGV[2]) then
    return {owner, redis.call('HGET', KEYS[1], 'epoch'), redis.call('HGET', KEYS[1], 'kind')}
  end
else
  redis.call('HSET', KEYS[1], 'kind', ARGV[3])
end
local epoch = math.max(tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0') + 1, ms)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', string.format('%d', epoch))
redis.call('PERSIST', KEYS[1])
return {ARGV[1], tostring(epoch), redis.call('HGET', KEYS[1], 'kind')}
