-- Keeps a node's session record, unless another node has taken the
-- session since (a resume there): then the record is that node's.
-- KEYS[1]: the session's record; KEYS[2]: this node's session ids.
-- ARGV[1]: this node; ARGV[2]: the hash of the current secret; ARGV[3]:
-- the session's data (name, color, rooms); ARGV[4]: the session id.
local owner = redis.call('HGET', KEYS[1], 'node')
if owner and owner ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'hash', ARGV[2], 'data', ARGV[3])
-- A node taken for dead and reaped, then woken up, keeps its sessions.
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
