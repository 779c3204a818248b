-- Gives up a room its owner closed, if the node still owns it.
-- KEYS[1]: the room's owner hash; KEYS[2]: the room's frame log.
-- ARGV[1]: the releasing node; ARGV[2]: how long the epoch count is kept,
-- in milliseconds (a room opened again within it numbers on).
-- Returns 1 when released.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 'owner', 'kind')
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
