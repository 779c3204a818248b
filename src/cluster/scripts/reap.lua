-- Reaps a node taken for dead: its sessions' records may still be resumed
-- on any node, for the reconnect grace, and are forgotten after; the node
-- leaves the heartbeats (a node that was only paused finds itself fenced
-- when it wakes). Atomic, so whichever survivor runs it first reaps, and
-- the others find nothing left.
-- KEYS[1]: the nodes' heartbeats; KEYS[2]: the dead node's session ids.
-- ARGV[1]: the dead node; ARGV[2]: cluster.node_timeout_ms;
-- ARGV[3]: games.reconnect_grace_ms.
-- Returns the sessions reaped, or -1 when the node is alive after all.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seen and tonumber(seen) >= ms - tonumber(ARGV[2]) then
  return -1
end
local reaped = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = 'parlor:{session:' .. id .. '}'
  -- A session that resumed elsewhere since is the other node's.
  if redis.call('HGET', key, 'node') == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[3])
    reaped = reaped + 1
  end
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return reaped
