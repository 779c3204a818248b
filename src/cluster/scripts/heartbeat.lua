-- A node says it is alive; answers whether it had been taken for dead
-- ('stale': no heartbeat of it within the node timeout, as after a pause
-- or a Redis that lost its data) or not ('fresh'), how many nodes are
-- live, the live nodes, then the nodes taken for dead and not yet reaped.
-- KEYS[1]: the nodes' heartbeats, a sorted set scored in milliseconds.
-- ARGV[1]: the node; ARGV[2]: cluster.node_timeout_ms.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local last = redis.call('ZSCORE', KEYS[1], ARGV[1])
local state = 'fresh'
if not last or tonumber(last) < ms - tonumber(ARGV[2]) then
  state = 'stale'
end
redis.call('ZADD', KEYS[1], ms, ARGV[1])
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ms - tonumber(ARGV[2]), '+inf')
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (ms - tonumber(ARGV[2])))
local answer = {state, tostring(#live)}
for _, node in ipairs(live) do table.insert(answer, node) end
for _, node in ipairs(dead) do table.insert(answer, node) end
return answer
