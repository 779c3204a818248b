-- Takes a session for the node resuming it: a compare-and-set on its
-- record, so that one node at most wins the session a token names.
-- KEYS[1]: the session's record (a hash: node, hash, data).
-- KEYS[2]: the nodes' heartbeats, a sorted set scored in milliseconds.
-- ARGV[1]: the hash of the secret the client gave; ARGV[2]: this node;
-- ARGV[3]: the hash of the session's new secret; ARGV[4]:
-- cluster.node_timeout_ms; ARGV[5]: games.reconnect_grace_ms; ARGV[6]: a
-- node that has just ended the session for this one ('' if none).
-- Returns {'none'} (no such session, or another secret), {'live', node,
-- data} (its node is alive: it must end the session first), or {'taken',
-- data}.
local record = redis.call('HMGET', KEYS[1], 'node', 'hash', 'data')
local owner, hash, data = record[1], record[2], record[3]
if not owner or not hash or not data or hash ~= ARGV[1] then
  return {'none'}
end
if owner ~= ARGV[2] and owner ~= ARGV[6] then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local seen = redis.call('ZSCORE', KEYS[2], owner)
  if seen and tonumber(seen) >= ms - tonumber(ARGV[4]) then
    return {'live', owner, data}
  end
  -- Its node is dead. Not reaped yet: it died within the node timeout, or
  -- so long ago that the grace is over.
  if redis.call('PTTL', KEYS[1]) == -1 then
    if not seen or tonumber(seen) < ms - tonumber(ARGV[4]) - tonumber(ARGV[5]) then
      return {'none'}
    end
  end
end
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'hash', ARGV[3])
redis.call('PERSIST', KEYS[1])
return {'taken', data}
