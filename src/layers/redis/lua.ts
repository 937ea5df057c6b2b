/**
 * Every multi-step mutation of the Redis backend, as one Lua script each, so
 * Redis runs it atomically. Conventions:
 *
 * - `ARGV[1]` is the key prefix; the other arguments are key suffixes (built
 *   with `Keys`) and values. Scripts derive index keys themselves, so every
 *   key of one prefix must live on one Redis node (no Redis Cluster).
 * - `now` always comes from Effect's `Clock` (never Redis `TIME`), so
 *   `TestClock` drives expiry; a record is live strictly before its expiry.
 * - Records that scripts read or change are hashes (`g` grant, `x` expiry,
 *   ...); the record itself is JSON in one field. Scripts never re-encode
 *   JSON (Redis' cjson would mangle empty arrays and large numbers).
 * - Expiry: native `PX` on every record; the `expiry` sorted set (scored by
 *   expiry) is what the sweep walks; grant members, provider ids and API-key
 *   sessions are sorted sets trimmed of expired members as they are written.
 *
 * Key namespaces are spliced in from `Keys`, so the scripts and the
 * TypeScript side cannot disagree about them.
 */
import { createHash } from "node:crypto"
import { Keys } from "../../internal/keys.ts"

/** A script and its SHA-1 (for `EVALSHA`). */
export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

const lit = (s: string): string => JSON.stringify(s)
/** The namespace of a key pattern: everything up to and including its first `:`. */
const ns = (key: string): string => key.slice(0, key.indexOf(":") + 1)

const K = {
  expiry: lit(Keys.expiries),
  lru: lit(Keys.sessionsByAccess),
  session: lit(Keys.session("")),
  apikey: lit(Keys.sessionsByKey("")),
  members: lit(Keys.grantMembers("")),
  grant: lit(Keys.grant("")),
  providerIds: lit(Keys.providerIds("")),
  provider: lit(ns(Keys.providerTokens("a", "p"))),
  code: lit(Keys.code("")),
  access: lit(Keys.accessToken("")),
  refresh: lit(Keys.refreshToken("")),
  signing: lit(Keys.signingKeys)
}

const base = `
local P = ARGV[1]
local function int(n) return string.format('%d', n) end
local function ttl(x, now) return int(math.max(1, x - now)) end
local function extend(key, x, now)
  local px = math.max(1, x - now)
  if redis.call('PTTL', key) < px then redis.call('PEXPIRE', key, int(px)) end
end
local function index_member(owner, m, x, now)
  local mk = P .. ${K.members} .. owner
  redis.call('ZREMRANGEBYSCORE', mk, '-inf', now)
  redis.call('ZADD', mk, int(x), m)
  extend(mk, x, now)
end
`

const revokeGrantFn = `
local function revoke_grant(g)
  local n = redis.call('DEL', P .. ${K.grant} .. g)
  local mk = P .. ${K.members} .. g
  for _, m in ipairs(redis.call('ZRANGE', mk, 0, -1)) do
    n = n + redis.call('DEL', P .. m)
    redis.call('ZREM', P .. ${K.expiry}, m)
  end
  redis.call('DEL', mk, P .. ${K.providerIds} .. g)
  return n
end
`

const sessionFns = `
local SF = {'d', 'k', 'i', 'pv', 'ci', 'la', 'ie', 'ae'}
local function read_session(id)
  local f = redis.call('HMGET', P .. ${K.session} .. id, unpack(SF))
  if f[1] then return f end
  return nil
end
local function session_end(f) return math.min(tonumber(f[7]), tonumber(f[8])) end
local function remove_session(id, k)
  redis.call('DEL', P .. ${K.session} .. id)
  redis.call('ZREM', P .. ${K.lru}, id)
  if k then redis.call('ZREM', P .. ${K.apikey} .. k, id) end
  redis.call('ZREM', P .. ${K.expiry}, ${K.session} .. id)
end
`

const providerFns = `
local function put_provider(m, now, x, a, pe, e)
  local key = P .. m
  redis.call('DEL', key)
  redis.call('HSET', key, 'e', e, 'x', int(x), 'a', a, 'p', pe)
  redis.call('PEXPIRE', key, ttl(x, now))
  redis.call('ZADD', P .. ${K.expiry}, int(x), m)
  local ik = P .. ${K.providerIds} .. a
  redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
  redis.call('ZADD', ik, int(x), pe)
  extend(ik, x, now)
  index_member(a, m, x, now)
end
local function drop_provider(m)
  local key = P .. m
  local f = redis.call('HMGET', key, 'a', 'p')
  local n = redis.call('DEL', key)
  if f[1] then
    redis.call('ZREM', P .. ${K.providerIds} .. f[1], f[2])
    redis.call('ZREM', P .. ${K.members} .. f[1], m)
  end
  redis.call('ZREM', P .. ${K.expiry}, m)
  return n
end
`

/** A script: the shared helpers (`P`, `int`, `ttl`, `extend`, `index_member`), `parts`, then `body`. */
export const script = (name: string, parts: ReadonlyArray<string>, body: string): Script => {
  const lua = `${base}${parts.join("")}\n${body.trim()}\n`
  return { name, lua, sha: createHash("sha1").update(lua).digest("hex") }
}

/** ARGV: P, m, value, now, x. A JSON record with its expiry. */
export const putString = script("putString", [], `
local m, now, x = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SET', P .. m, ARGV[3], 'PX', ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
return 1
`)

/** ARGV: P, m, now, x, g, then field/value pairs. A record issued under grant `g`. */
export const putMember = script("putMember", [], `
local m, now, x, g = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local key = P .. m
redis.call('DEL', key)
redis.call('HSET', key, 'g', g, 'x', int(x), unpack(ARGV, 6))
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
index_member(g, m, x, now)
return 1
`)

/** ARGV: P, m. Remove one grant member; 1 when it existed. */
export const dropMember = script("dropMember", [], `
local m = ARGV[2]
local g = redis.call('HGET', P .. m, 'g')
local n = redis.call('DEL', P .. m)
if g then redis.call('ZREM', P .. ${K.members} .. g, m) end
redis.call('ZREM', P .. ${K.expiry}, m)
return n
`)

/**
 * ARGV: P, m, now. Consume a code: `{'C', record}` for the one caller that
 * consumes it, `{'R', grantId}` for any later use (the consumed code stays as
 * a tombstone until it would have expired), `{'N'}` when unknown or expired.
 */
export const consumeCode = script("consumeCode", [], `
local key, now = P .. ARGV[2], tonumber(ARGV[3])
local f = redis.call('HMGET', key, 'r', 'g', 'x', 'u')
if not f[1] or now >= tonumber(f[3]) then return {'N'} end
if f[4] then return {'R', f[2]} end
redis.call('HSET', key, 'u', ARGV[3])
return {'C', f[1]}
`)

/**
 * ARGV: P, m (presented), sm (successor), now, grace window, refresh TTL,
 * sealed pair. Decides exactly as \`decideRotation\` (src/internal/records.ts):
 * - NotFound \`{'N'}\`: unknown or expired;
 * - Rotate \`{'R', b, n, c, x, nx}\`: never rotated: mark it rotated, keep the
 *   sealed pair and the successor's key on it, write the successor
 *   (generation n + 1, expiry min(now + ttl, chain end));
 * - GraceReplay \`{'G', sealed, b, n, c, x}\`: rotated within the window and its
 *   successor is still the live, unrotated head (the successor's fields);
 * - Reuse \`{'U', grantId}\`: any other presentation: the grant is revoked here.
 */
export const rotateRefresh = script("rotateRefresh", [revokeGrantFn], `
local key, sm, now, grace, ttlms = P .. ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local f = redis.call('HMGET', key, 'b', 'g', 'n', 'c', 'x', 'ax', 'rot', 's', 'p')
if not f[1] or now >= tonumber(f[5]) then return {'N'} end
if not f[7] then
  local nx = math.min(now + ttlms, tonumber(f[6]))
  local sk = P .. sm
  redis.call('HSET', key, 'rot', ARGV[4], 's', sm, 'p', ARGV[7])
  redis.call('DEL', sk)
  redis.call('HSET', sk, 'b', f[1], 'g', f[2], 'n', int(tonumber(f[3]) + 1), 'c', ARGV[4], 'x', int(nx), 'ax', f[6])
  redis.call('PEXPIRE', sk, ttl(nx, now))
  redis.call('ZADD', P .. ${K.expiry}, int(nx), sm)
  index_member(f[2], sm, nx, now)
  return {'R', f[1], f[3], f[4], f[5], int(nx)}
end
if now - tonumber(f[7]) <= grace and f[8] then
  local s = redis.call('HMGET', P .. f[8], 'b', 'n', 'c', 'x', 'rot')
  if s[1] and now < tonumber(s[4]) and not s[5] then
    return {'G', f[9], s[1], s[2], s[3], s[4]}
  end
end
revoke_grant(f[2])
return {'U', f[2]}
`)

/** ARGV: P, grantId. Remove the grant and everything issued under it; the number of keys removed. */
export const revokeGrant = script("revokeGrant", [revokeGrantFn], `
return revoke_grant(ARGV[2])
`)

/**
 * ARGV: P, id, now, per-key limit, global limit, apiKeyHash, expiry, then the
 * session's field/value pairs. Drops the key's expired sessions, evicts its
 * least recently accessed while at the per-key limit, then the least recently
 * accessed anywhere while at the global limit, and writes the session.
 * Returns the evicted as \`{reason, fields}\` (fields as \`read_session\`).
 */
export const createSession = script("createSession", [sessionFns], `
local id, now, maxKey, maxAll, k, x = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local lru, ak = P .. ${K.lru}, P .. ${K.apikey} .. k
local evicted = {}
for _, sid in ipairs(redis.call('ZRANGE', ak, 0, -1)) do
  local f = read_session(sid)
  if not f or session_end(f) <= now then remove_session(sid, k) end
end
while true do
  local n = redis.call('ZCARD', ak)
  if n == 0 or n < maxKey then break end
  local sid = redis.call('ZRANGE', ak, 0, 0)[1]
  local f = read_session(sid)
  remove_session(sid, k)
  if f then table.insert(evicted, {'PerKeyLimit', f}) end
end
while true do
  local n = redis.call('ZCARD', lru)
  if n == 0 or n < maxAll then break end
  local sid = redis.call('ZRANGE', lru, 0, 0)[1]
  local f = read_session(sid)
  remove_session(sid, f and f[2] or nil)
  if f and session_end(f) > now then table.insert(evicted, {'GlobalLimit', f}) end
end
local key = P .. ${K.session} .. id
redis.call('HSET', key, unpack(ARGV, 8))
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', lru, ARGV[3], id)
redis.call('ZADD', ak, ARGV[3], id)
extend(ak, x, now)
redis.call('ZADD', P .. ${K.expiry}, int(x), ${K.session} .. id)
return evicted
`)

/**
 * ARGV: P, id, now, new idle expiry, new expiry. Record an access: only if
 * the session still exists, is live, and was last accessed before \`now\`.
 */
export const touchSession = script("touchSession", [], `
local id, now, x = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local key = P .. ${K.session} .. id
local f = redis.call('HMGET', key, 'k', 'la', 'ie', 'ae')
if not f[1] or tonumber(f[2]) >= now or math.min(tonumber(f[3]), tonumber(f[4])) <= now then return 0 end
redis.call('HSET', key, 'la', ARGV[3], 'ie', ARGV[4])
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${K.lru}, 'XX', ARGV[3], id)
local ak = P .. ${K.apikey} .. f[1]
redis.call('ZADD', ak, 'XX', ARGV[3], id)
extend(ak, x, now)
redis.call('ZADD', P .. ${K.expiry}, 'XX', int(x), ${K.session} .. id)
return 1
`)

/** ARGV: P, id, now, then field/value pairs. Patch a live session; its fields, or nil. */
export const updateSession = script("updateSession", [sessionFns], `
local id, now = ARGV[2], tonumber(ARGV[3])
local f = read_session(id)
if not f or session_end(f) <= now then return false end
if #ARGV > 3 then redis.call('HSET', P .. ${K.session} .. id, unpack(ARGV, 4)) end
return read_session(id)
`)

/** ARGV: P, id. 1 when the session existed. */
export const deleteSession = script("deleteSession", [sessionFns], `
local id = ARGV[2]
local k = redis.call('HGET', P .. ${K.session} .. id, 'k')
if not k then return 0 end
remove_session(id, k)
return 1
`)

/** ARGV: P, apiKeyHash, now. The key's live sessions, least recently accessed first; drops the others. */
export const listSessions = script("listSessions", [sessionFns], `
local k, now = ARGV[2], tonumber(ARGV[3])
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', P .. ${K.apikey} .. k, 0, -1)) do
  local f = read_session(sid)
  if f and session_end(f) > now then table.insert(out, f) else remove_session(sid, k) end
end
return out
`)

/** ARGV: P, m, now, x, authorizationId, encoded providerId, envelope. */
export const putProvider = script("putProvider", [providerFns], `
put_provider(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7])
return 1
`)

/** ARGV: P, m. 1 when the provider tokens existed. */
export const deleteProvider = script("deleteProvider", [providerFns], `
return drop_provider(ARGV[2])
`)

/** ARGV: P, authorizationId, now. The live encoded provider ids; drops the expired ones from the index. */
export const providerIds = script("providerIds", [], `
local ik = P .. ${K.providerIds} .. ARGV[2]
redis.call('ZREMRANGEBYSCORE', ik, '-inf', ARGV[3])
return redis.call('ZRANGE', ik, 0, -1)
`)

/** ARGV: P, authorizationId, key fragment (\`provider:{a}:\`), now. Live \`{pe, envelope, x}\` rows. */
export const readProviders = script("readProviders", [], `
local frag, now = ARGV[3], tonumber(ARGV[4])
local out = {}
for _, pe in ipairs(redis.call('ZRANGEBYSCORE', P .. ${K.providerIds} .. ARGV[2], '(' .. ARGV[4], '+inf')) do
  local f = redis.call('HMGET', P .. frag .. pe, 'e', 'x')
  if f[1] and tonumber(f[2]) > now then table.insert(out, {pe, f[1], f[2]}) end
end
return out
`)

/** ARGV: P, authorizationId, key fragment. Delete every provider's tokens of an authorization. */
export const deleteProviders = script("deleteProviders", [providerFns], `
local ik = P .. ${K.providerIds} .. ARGV[2]
for _, pe in ipairs(redis.call('ZRANGE', ik, 0, -1)) do drop_provider(ARGV[3] .. pe) end
redis.call('DEL', ik)
return 1
`)

/**
 * ARGV: P, from fragment, to fragment, to authorizationId, now, then
 * (encoded provider id, envelope read, re-sealed envelope, x) per provider.
 * Moves a provider only if its envelope is still the one read: a concurrent
 * write under \`from\` stays there.
 */
export const migrateProviders = script("migrateProviders", [providerFns], `
local from, to, a, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local moved = 0
for i = 6, #ARGV, 4 do
  local pe = ARGV[i]
  if redis.call('HGET', P .. from .. pe, 'e') == ARGV[i + 1] then
    drop_provider(from .. pe)
    put_provider(to .. pe, now, tonumber(ARGV[i + 3]), a, pe, ARGV[i + 2])
    moved = moved + 1
  end
end
return moved
`)

/** ARGV: P, expected version ('' for none), next version, envelope. 1 when written. */
export const compareAndSetKeys = script("compareAndSetKeys", [], `
local key = P .. ${K.signing}
local v = redis.call('HGET', key, 'v')
if (ARGV[2] == '' and not v) or v == ARGV[2] then
  redis.call('HSET', key, 'v', ARGV[3], 'e', ARGV[4])
  return 1
end
return 0
`)

/**
 * ARGV: P, now, limit. Delete up to \`limit\` records whose expiry has passed
 * (by the \`expiry\` index) and take them out of every index; the number
 * handled. With real time, Redis' \`PX\` has usually removed the records
 * already and this only trims the indexes.
 */
export const sweep = script("sweep", [], `
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local ek = P .. ${K.expiry}
local function starts(s, p) return string.sub(s, 1, #p) == p end
local due = redis.call('ZRANGEBYSCORE', ek, '-inf', ARGV[2], 'LIMIT', 0, limit)
for _, m in ipairs(due) do
  local key = P .. m
  if starts(m, ${K.session}) then
    local id = string.sub(m, #${K.session} + 1)
    local k = redis.call('HGET', key, 'k')
    if k then redis.call('ZREM', P .. ${K.apikey} .. k, id) end
    redis.call('ZREM', P .. ${K.lru}, id)
  elseif starts(m, ${K.provider}) then
    local f = redis.call('HMGET', key, 'a', 'p')
    if f[1] then
      redis.call('ZREM', P .. ${K.providerIds} .. f[1], f[2])
      redis.call('ZREM', P .. ${K.members} .. f[1], m)
    end
  elseif starts(m, ${K.code}) or starts(m, ${K.access}) or starts(m, ${K.refresh}) then
    local g = redis.call('HGET', key, 'g')
    if g then redis.call('ZREM', P .. ${K.members} .. g, m) end
  end
  redis.call('DEL', key)
  redis.call('ZREM', ek, m)
end
return #due
`)

/**
 * ARGV: P, key, now, x, owner. Take a refresh lease: a hash of its owner
 * token (`o`) and expiry (`x`), with `PX` as the safety net for a
 * holder that crashed. Taken when nobody holds it: the key is absent (never
 * taken, released, or dropped by `PX`) or its expiry has passed by
 * Effect's `Clock`. 1 when taken, 0 when held.
 */
export const acquireLease = script("acquireLease", [], `
local key, now, x = P .. ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local held = redis.call('HGET', key, 'x')
if held and now < tonumber(held) then return 0 end
redis.call('DEL', key)
redis.call('HSET', key, 'o', ARGV[5], 'x', int(x))
redis.call('PEXPIRE', key, ttl(x, now))
return 1
`)

/**
 * ARGV: P, key, owner. Release a lease by compare-and-delete: deleted only
 * while it still carries `owner` (an expired lease taken over by another
 * holder is theirs). 1 when it was ours.
 */
export const releaseLease = script("releaseLease", [], `
local key = P .. ARGV[2]
if redis.call('HGET', key, 'o') ~= ARGV[3] then return 0 end
redis.call('DEL', key)
return 1
`)

/**
 * ARGV: P, m, now, interval, capacity. Take one token from a `RateLimiter`
 * bucket, exactly as `consumeAt` (src/internal/rateLimit.ts) decides: the
 * bucket's state is the instant it is full again (a string, with `PX` until
 * then and a place in the `expiry` index); missing or past is a full bucket.
 * `{1, next}` when a token was taken (the new state), `{0, state}` when the
 * bucket is empty (nothing written).
 */
export const consumeToken = script("consumeToken", [], `
local m, now, T, C = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local key = P .. m
local base = math.max(tonumber(redis.call('GET', key) or '0'), now)
local nx = base + T
if nx - now > C then return {0, int(base)} end
redis.call('SET', key, int(nx), 'PX', ttl(nx, now))
redis.call('ZADD', P .. ${K.expiry}, int(nx), m)
return {1, int(nx)}
`)

/**
 * ARGV: P, m, now, interval. Give one token back to a `RateLimiter` bucket
 * (`refundAt`): its state moves back one interval; at or before `now` the
 * bucket is full and the key goes. 1 when there was a state to change.
 */
export const refundToken = script("refundToken", [], `
local m, now, T = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. m
local tat = tonumber(redis.call('GET', key) or '0')
if tat <= now then return 0 end
local back = tat - T
if back <= now then
  redis.call('DEL', key)
  redis.call('ZREM', P .. ${K.expiry}, m)
  return 1
end
redis.call('SET', key, int(back), 'PX', ttl(back, now))
redis.call('ZADD', P .. ${K.expiry}, int(back), m)
return 1
`)

/** ARGV: P, m. Delete one record that has no index but `expiry`; 1 when it existed. */
export const dropRecord = script("dropRecord", [], `
redis.call('ZREM', P .. ${K.expiry}, ARGV[2])
return redis.call('DEL', P .. ARGV[2])
`)

/**
 * ARGV: P, m, now, x. A `ReplayCache` sighting: 0 when the id is held and
 * live (a replay; nothing changes), else remember it until `x` (`PX` and
 * the `expiry` index) and 1 (the first sighting).
 */
export const rememberId = script("rememberId", [], `
local m, now, x = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. m
local held = redis.call('GET', key)
if held and now < tonumber(held) then return 0 end
redis.call('SET', key, int(x), 'PX', ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
return 1
`)

// Resumable SSE streams (McpEventStore): one hash per stream, `Keys.mcpStream(id)`, with its owner hash (o),
// last sequence (s), first retained sequence (f), TTL (t), expiry (x) and each retained event's envelope (e<n>);
// PX and the expiry index like every record, so the sweep deletes it whole.

/** ARGV: P, m, now, x, owner hash, ttl. A new, empty stream. */
export const openStream = script("openStream", [], `
local m, now, x = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. m
redis.call('DEL', key)
redis.call('HSET', key, 'o', ARGV[5], 's', '0', 'f', '1', 't', ARGV[6], 'x', ARGV[4])
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
return 1
`)

/**
 * ARGV: P, m, now, envelope, max. Append to a live stream: the next
 * sequence number, the event stored under it, the oldest dropped past `max`,
 * the expiry slid. The new sequence number; 0 when the stream is gone.
 */
export const appendStreamEvent = script("appendStreamEvent", [], `
local m, now, max = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local key = P .. m
local f = redis.call('HMGET', key, 's', 'f', 't', 'x')
if not f[1] or tonumber(f[4]) <= now then return 0 end
local s, first = tonumber(f[1]) + 1, tonumber(f[2])
local x = now + tonumber(f[3])
redis.call('HSET', key, 's', int(s), 'x', int(x), 'e' .. int(s), ARGV[4])
while s - first + 1 > max do
  redis.call('HDEL', key, 'e' .. int(first))
  first = first + 1
end
redis.call('HSET', key, 'f', int(first))
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
return s
`)

/**
 * ARGV: P, m, now, owner hash, after. The events after sequence `after` of
 * a live stream of that owner, its expiry slid: { last sequence, then
 * (sequence, envelope) per retained event }. nil when the stream is gone,
 * belongs to another owner, or never reached `after`.
 */
export const replayStream = script("replayStream", [], `
local m, now, after = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local key = P .. m
local f = redis.call('HMGET', key, 'o', 's', 'f', 't', 'x')
if not f[1] or tonumber(f[5]) <= now or f[1] ~= ARGV[4] then return false end
local s = tonumber(f[2])
if after > s then return false end
local x = now + tonumber(f[4])
redis.call('HSET', key, 'x', int(x))
redis.call('PEXPIRE', key, ttl(x, now))
redis.call('ZADD', P .. ${K.expiry}, int(x), m)
local out = { int(s) }
for n = math.max(after + 1, tonumber(f[3])), s do
  local e = redis.call('HGET', key, 'e' .. int(n))
  if e then
    out[#out + 1] = int(n)
    out[#out + 1] = e
  end
end
return out
`)

/** ARGV: P, m. Delete a stream; 1 when it existed. */
export const closeStream = script("closeStream", [], `
local n = redis.call('DEL', P .. ARGV[2])
redis.call('ZREM', P .. ${K.expiry}, ARGV[2])
return n
`)

/** Every script, loaded when the layer connects. */
export const all: ReadonlyArray<Script> = [
  putString,
  putMember,
  dropMember,
  consumeCode,
  rotateRefresh,
  revokeGrant,
  createSession,
  touchSession,
  updateSession,
  deleteSession,
  listSessions,
  putProvider,
  deleteProvider,
  providerIds,
  readProviders,
  deleteProviders,
  migrateProviders,
  compareAndSetKeys,
  acquireLease,
  releaseLease,
  consumeToken,
  refundToken,
  dropRecord,
  rememberId,
  openStream,
  appendStreamEvent,
  replayStream,
  closeStream,
  sweep
]
