//! Lua scripts that make each lock operation a single atomic step on the Redis server.

/// KEYS: lock, fence counter. ARGV: token, ttl ms. Returns the new fence, or 0 when the lock is held.
/// The SET and the INCR run together so a fence is handed out exactly once per successful acquisition.
/// A missing counter starts at the server clock in microseconds rather than 1: if Redis lost its data (a restart
/// without persistence), new fences still exceed every fence handed out before, so an old lease never matches.
pub(super) const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  if fence == 1 then
    local now = redis.call('TIME')
    fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
    redis.call('SET', KEYS[2], string.format('%d', fence))
  end
  return fence
end
return 0
";

/// KEYS: lock. ARGV: token, ttl ms. Sets the TTL only if the caller's token is stored. Returns 1 or 0.
pub(super) const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// KEYS: lock. ARGV: token. Deletes the lock only if the caller's token is stored. Returns 1 or 0.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Fence guard shared by every fenced write script. It expects KEYS[1] = lock key, KEYS[2] = fence key,
/// ARGV[1] = token and ARGV[2] = fence, and defines `fence_is_current()`: the fence is the latest one handed out and
/// no other token holds the lock (a holder from another system, e.g. the Python worker, has no fence of its own).
pub(crate) const FENCE_GUARD_LUA: &str = r"
local function fence_is_current()
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return false
  end
  local holder = redis.call('GET', KEYS[1])
  if holder and holder ~= ARGV[1] then
    return false
  end
  return true
end
";

/// `FENCE_GUARD_LUA` plus a check returning 1 or 0.
pub(super) fn is_current() -> String {
    format!("{FENCE_GUARD_LUA}\nif fence_is_current() then return 1 end\nreturn 0\n")
}
