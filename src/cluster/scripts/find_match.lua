-- Quick match across nodes: pairs a session with the longest-waiting
-- session of a live node, or queues it. Atomic: nobody is paired twice.
-- KEYS[1]: the kind's queue, session ids scored by when they queued (ms).
-- KEYS[2]: the queued sessions' nodes, a hash.
-- KEYS[3]: the nodes' heartbeats, a sorted set scored in milliseconds.
-- ARGV[1]: the session; ARGV[2]: its node; ARGV[3]: cluster.node_timeout_ms.
-- Returns {waiting session, its node} when paired (it leaves the queue),
-- or {} when the session now waits. Sessions of dead nodes are dropped.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
while true do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #first == 0 then
    break
  end
  local waiting = first[1]
  local node = redis.call('HGET', KEYS[2], waiting)
  redis.call('ZREM', KEYS[1], waiting)
  redis.call('HDEL', KEYS[2], waiting)
  if waiting ~= ARGV[1] and node then
    local seen = redis.call('ZSCORE', KEYS[3], node)
    if seen and tonumber(seen) >= ms - tonumber(ARGV[3]) then
      return {waiting, node}
    end
  end
end
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {}
