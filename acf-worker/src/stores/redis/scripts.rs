//! Lua scripts for the Redis stores. Each multi-key change is one script so it is atomic on the server.

use crate::mutex::FENCE_GUARD_LUA;

/// `insert_message(message, index, ttl, score, id, first)`: stores the message hash (fields and values from
/// `ARGV[first]` to the end) and indexes it as open; 1 when stored, 0 (changing nothing) when the id exists.
const INSERT_MESSAGE_FN: &str = r"
local function insert_message(message, index, ttl, score, id, first)
  if redis.call('EXISTS', message) == 1 then
    return 0
  end
  redis.call('HSET', message, unpack(ARGV, first))
  redis.call('PEXPIRE', message, ttl)
  redis.call('ZADD', index, score, id)
  redis.call('PEXPIRE', index, ttl)
  return 1
end
";

/// `record_arrival(state, gaps, now_ms, max_gap_ms, max_samples, ttl_ms, now_text)`: samples the gap to the
/// latest earlier arrival into the gap list, moves the session's last arrival forward, and returns the kept gaps.
const RECORD_ARRIVAL_FN: &str = r"
local function record_arrival(state, gaps, now_ms, max_gap, max_samples, ttl, now_text)
  local now = tonumber(now_ms)
  local prev = tonumber(redis.call('HGET', state, 'last_message_at_ms'))
  if prev then
    local gap = now - prev
    if gap >= 0 and gap <= tonumber(max_gap) then
      redis.call('RPUSH', gaps, gap)
      redis.call('LTRIM', gaps, -tonumber(max_samples), -1)
    end
  end
  if (not prev) or now >= prev then
    redis.call('HSET', state, 'last_message_at_ms', now_ms, 'last_message_at', now_text)
  end
  redis.call('PEXPIRE', state, ttl)
  if redis.call('EXISTS', gaps) == 1 then
    redis.call('PEXPIRE', gaps, ttl)
  end
  return redis.call('LRANGE', gaps, 0, -1)
end
";

/// KEYS: message hash, open index. ARGV: ttl ms, index score, message id, then hash field/value pairs.
/// Returns 1 when stored, 0 when the id already existed.
pub(super) fn insert_message() -> String {
    format!(
        "{INSERT_MESSAGE_FN}return insert_message(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], 4)"
    )
}

/// A message's intake in one round trip. KEYS: 1 state hash, 2 gap list, 3 inbox, 4 message hash, 5 open index.
/// ARGV: 1 arrival ms, 2 max gap ms, 3 max samples, 4 session ttl ms, 5 arrival text, 6 inbox entry, 7 inbox ttl
/// ms, 8 message ttl ms, 9 index score, 10 message id, 11.. message hash field/value pairs. Stores the message,
/// records its arrival and signals the inbox; returns 1, or 0 (changing nothing) when the id was stored already.
pub(super) fn accept_message() -> String {
    format!(
        "{INSERT_MESSAGE_FN}{RECORD_ARRIVAL_FN}{}",
        r"
if insert_message(KEYS[4], KEYS[5], ARGV[8], ARGV[9], ARGV[10], 11) == 0 then
  return 0
end
record_arrival(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
return 1
"
    )
}

/// KEYS: a session's open index. ARGV: its message keys up to the id (the keys share the index's slot on a
/// cluster). Returns {id, the message hash's fields and values} per indexed id, oldest first: one round trip where
/// a ZRANGE then the HGETALLs took two.
pub(super) const OPEN_MESSAGES: &str = r"
local rows = {}
for i, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  rows[i] = {id, redis.call('HGETALL', ARGV[1] .. id)}
end
return rows
";

/// KEYS: lock, fence, message hashes... ARGV: token, fence, turn id, updated_at.
/// Returns {0} for a stale lease, else {1, positions of absorbed messages (1-based)...}.
pub(super) fn absorb() -> String {
    format!(
        "{FENCE_GUARD_LUA}{}",
        r"
if not fence_is_current() then
  return {0}
end
local absorbed = {1}
for i = 3, #KEYS do
  local status = redis.call('HGET', KEYS[i], 'status')
  if status == 'pending' or status == 'absorbed' then
    redis.call('HSET', KEYS[i], 'status', 'absorbed', 'turn_id', ARGV[3], 'updated_at', ARGV[4])
    table.insert(absorbed, i - 2)
  end
end
return absorbed
"
    )
}

/// KEYS: message hashes. ARGV: turn id, updated_at. Returns how many went back to pending.
pub(super) const RELEASE_ABSORBED: &str = r"
local released = 0
for i = 1, #KEYS do
  local fields = redis.call('HMGET', KEYS[i], 'status', 'turn_id')
  if fields[1] == 'absorbed' and fields[2] == ARGV[1] then
    redis.call('HSET', KEYS[i], 'status', 'pending', 'updated_at', ARGV[2])
    redis.call('HDEL', KEYS[i], 'turn_id')
    released = released + 1
  end
end
return released
";

/// KEYS: state hash, gap list. ARGV: arrival ms, max gap ms, max samples, ttl ms, arrival text.
/// Samples the gap to the latest earlier arrival and returns the kept gaps.
pub(super) fn record_arrival() -> String {
    format!(
        "{RECORD_ARRIVAL_FN}return record_arrival(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"
    )
}

/// The turn commit. KEYS: 1 lock, 2 fence, 3 commit marker, 4 state hash, 5 turn record, 6 session turn index,
/// 7 open-message index, 8 response stream (or, on a cluster, the turn's outbox hash), 9.. message hashes.
/// ARGV: 1 token, 2 fence, 3 turn id, 4 record JSON, 5 message status, 6 failure reason, 7 updated_at,
/// 8 hint mode (`set`/`clear`/`keep`), 9 hint JSON, 10 record ttl ms, 11 session ttl ms, 12 stream max length,
/// 13 publish (`1`: to the stream, `2`: to the outbox, `0`: nothing), 14.. stream body field/value pairs.
/// On a cluster the stream lives in another slot than the session, so the entry waits in the session's outbox
/// (with its `turn_number`) and [`PUBLISH_OUTBOX`] then [`FINISH_OUTBOX`] move it to the stream.
/// The turn's messages must each be open (pending, or absorbed by any turn under this current lease): one closed
/// by another turn, or gone, means the session's next holder answered it, and nothing is written.
/// Returns {0, marker} when already committed, {-1, ''} for a stale lease, {-2, ''} when a message is not open,
/// {1, marker} after committing, where marker is `{turn_number}|{stream entry id or empty}`.
pub(super) fn commit() -> String {
    format!(
        "{FENCE_GUARD_LUA}{}",
        r"
local done = redis.call('GET', KEYS[3])
if done then
  return {0, done}
end
if not fence_is_current() then
  return {-1, ''}
end
for i = 9, #KEYS do
  local status = redis.call('HGET', KEYS[i], 'status')
  if status ~= 'pending' and status ~= 'absorbed' then
    return {-2, ''}
  end
end
local n = redis.call('HINCRBY', KEYS[4], 'turn_count', 1)
redis.call('HSET', KEYS[4], 'last_turn_id', ARGV[3])
if ARGV[8] == 'set' then
  redis.call('HSET', KEYS[4], 'last_hint', ARGV[9])
elseif ARGV[8] == 'clear' then
  redis.call('HDEL', KEYS[4], 'last_hint')
end
redis.call('PEXPIRE', KEYS[4], ARGV[11])
redis.call('HSET', KEYS[5], 'record', ARGV[4], 'turn_number', n)
redis.call('PEXPIRE', KEYS[5], ARGV[10])
redis.call('ZADD', KEYS[6], n, ARGV[3])
redis.call('PEXPIRE', KEYS[6], ARGV[10])
for i = 9, #KEYS do
  redis.call('HSET', KEYS[i], 'status', ARGV[5], 'turn_id', ARGV[3], 'reason', ARGV[6], 'updated_at', ARGV[7])
  redis.call('ZREM', KEYS[7], string.match(KEYS[i], ':([^:]*)$'))
end
local entry = ''
if ARGV[13] == '1' then
  entry = redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[12], '*', 'turn_id', ARGV[3], 'turn_number', n, unpack(ARGV, 14))
elseif ARGV[13] == '2' then
  redis.call('HSET', KEYS[8], 'turn_number', n, unpack(ARGV, 14))
  redis.call('PEXPIRE', KEYS[8], ARGV[10])
end
local marker = n .. '|' .. entry
redis.call('SET', KEYS[3], marker, 'PX', ARGV[10])
return {1, marker}
"
    )
}

/// Cluster only, in the response stream's slot. KEYS: 1 stream, 2 the turn's sent marker. ARGV: 1 ttl ms,
/// 2 stream max length, 3 turn id, 4 turn number, 5.. body field/value pairs. Appends the entry unless the
/// marker shows it was appended already; returns the entry id either way, so a turn is on the stream once.
pub(super) const PUBLISH_OUTBOX: &str = r"
local sent = redis.call('GET', KEYS[2])
if sent then
  return sent
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'turn_id', ARGV[3], 'turn_number', ARGV[4], unpack(ARGV, 5))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
";

/// Cluster only, in the session's slot. KEYS: 1 commit marker, 2 outbox. ARGV: 1 stream entry id. Records the
/// entry id in the marker and drops the outbox. Returns the new marker ('' when the marker is gone).
pub(super) const FINISH_OUTBOX: &str = r"
local marker = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[2])
if not marker then
  return ''
end
local updated = string.match(marker, '^([^|]*)|') .. '|' .. ARGV[1]
redis.call('SET', KEYS[1], updated, 'KEEPTTL')
return updated
";
