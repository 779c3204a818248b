-- A node says it is alive; answers the live nodes.
-- KEYS[1]: the nodes' heartbeats, a sorted set scored in milliseconds.
-- ARGV[1]: the node; ARGV[2]: cluster.node_timeout_ms.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], ms - tonumber(ARGV[2]), '+inf')
