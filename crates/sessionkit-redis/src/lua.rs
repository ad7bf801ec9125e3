//! The Lua scripts, one per decision. Every script gets the six keys of one
//! shard (see `layout.rs`),
//! all under the store's prefix (see the crate README):
//! `KEYS = [records, tokens, purge, floor, subjects, counters]`.

/// Helpers shared by every script (pasted after the shebang line).
const PRELUDE: &str = r#"
local R, TOK, PQ, FLOOR, SA, CNT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function fmt(x) return string.format('%d', x) end
local function corrupt(what) error({err = 'CORRUPT ' .. what}) end
-- A record is a MessagePack array (see codec.rs): 1 v, 2 ten, 3 tok,
-- 4 sub, 5 st, 6 rat, 7 ver, 8 cat, 9 ls, 10 idle, 11 exp, 12 auth, 13 a,
-- 14 c, 15 rc, 16 rp, 17 rg, 18 ri, 19 rgu; strings, false when absent.
local function hdr(id)
  local b = redis.call('HGET', R, id)
  if not b then return nil end
  local ok, r = pcall(cmsgpack.unpack, b)
  if not ok or type(r) ~= 'table' or #r ~= 19 then corrupt('record') end
  if r[1] ~= '2' then corrupt('record format') end
  local h = {id = id, r = r, ten = r[2], st = tonumber(r[5]), ver = tonumber(r[7]),
    ls = tonumber(r[9]), idle = tonumber(r[10]), exp = tonumber(r[11]), sub = r[4], tok = r[3],
    cat = tonumber(r[8])}
  if type(h.ten) ~= 'string' or not h.st or not h.ver or not h.ls or not h.idle or not h.exp
     or type(h.tok) ~= 'string' or not h.cat then corrupt('record header') end
  if h.sub == false then h.sub = nil end
  return h
end
local function save(h) redis.call('HSET', R, h.id, cmsgpack.pack(h.r)) end
local function idle_dl(h)
  local d = h.ls + h.idle
  if d > h.exp then d = h.exp end
  return d
end
local function is_live(h, now) return h.st == 0 and now < h.exp and now < idle_dl(h) end
local function purge_at(h) if h.st == 0 then return idle_dl(h) end return h.exp end
local function fetch(id) return redis.call('HGET', R, id) end
local function bump_floor(now)
  local f = tonumber(redis.call('GET', FLOOR) or '')
  if not f or now > f then redis.call('SET', FLOOR, fmt(now)) end
end
local function submember(ten, sub, id) return ten .. '|' .. sub .. '|' .. id end
-- Counters and the subject index lose an active record (revoked or purged).
local function deactivate(h)
  redis.call('HINCRBY', CNT, h.ten .. ':active', -1)
  if h.sub then
    redis.call('ZREM', SA, submember(h.ten, h.sub, h.id))
    if redis.call('HINCRBY', CNT, h.ten .. ':s:' .. h.sub, -1) <= 0 then
      redis.call('HDEL', CNT, h.ten .. ':s:' .. h.sub)
      redis.call('HINCRBY', CNT, h.ten .. ':subjects', -1)
    end
  else
    redis.call('HINCRBY', CNT, h.ten .. ':anon', -1)
  end
end
local function tombstone(h, reason, now)
  local r = h.r
  r[5] = fmt(reason)
  r[6] = fmt(now)
  for i = 13, 19 do r[i] = false end
  save(h)
  redis.call('ZADD', PQ, h.exp, h.id)
  deactivate(h)
end
local function subject_ids(ten, sub)
  local pfx = ten .. '|' .. sub .. '|'
  local out = {}
  for i, m in ipairs(redis.call('ZRANGEBYLEX', SA, '[' .. pfx, '(' .. pfx .. '~')) do
    out[i] = string.sub(m, #pfx + 1)
  end
  return out
end
"#;

/// create. ARGV: id, token, tenant, subject ('' = anonymous), now,
/// cap ('' = none), refuse (0/1), replaces ('' = none), anonymous cap
/// ('' = none), purge_at, the record, its absolute deadline (the keys'
/// TTL backstop).
pub(crate) const CREATE: &str = r#"
local id, tok, ten, sub, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HEXISTS', R, id) == 1 or redis.call('HEXISTS', TOK, tok) == 1 then
  return {'duplicate'}
end
local victims = {}
if sub == '' then
  if ARGV[9] ~= '' then
    local n = tonumber(redis.call('HGET', CNT, ten .. ':anon') or '0')
    if n >= tonumber(ARGV[9]) then return {'anonymous_limit'} end
  end
else
  local cap = tonumber(ARGV[6])
  if cap then
    local live = {}
    for _, o in ipairs(subject_ids(ten, sub)) do
      if o ~= ARGV[8] and o ~= id then
        local h = hdr(o)
        if h and is_live(h, now) then live[#live + 1] = h end
      end
    end
    if #live >= cap then
      if ARGV[7] == '1' then return {'subject_limit'} end
      table.sort(live, function(x, y)
        if x.ls ~= y.ls then return x.ls < y.ls end
        return x.id < y.id
      end)
      for i = 1, #live - cap + 1 do victims[i] = live[i] end
    end
  end
end
-- every check passed: only writes from here on
local evicted = {}
for i, h in ipairs(victims) do
  tombstone(h, 6, now)
  evicted[i] = h.id
end
redis.call('HSET', R, id, ARGV[11])
redis.call('HSET', TOK, tok, id)
redis.call('ZADD', PQ, ARGV[10], id)
redis.call('HINCRBY', CNT, ten .. ':active', 1)
if sub == '' then
  redis.call('HINCRBY', CNT, ten .. ':anon', 1)
else
  redis.call('ZADD', SA, 0, submember(ten, sub, id))
  if redis.call('HINCRBY', CNT, ten .. ':s:' .. sub, 1) == 1 then
    redis.call('HINCRBY', CNT, ten .. ':subjects', 1)
  end
end
bump_floor(now)
-- Key TTLs as a backstop, never the authority (purge is): every key of the
-- shard lives at least a day past the latest absolute deadline written
-- into it, so a shard that nobody purges any more goes away. Only for a
-- deadline ahead of Redis's own clock (one in the past would delete the
-- keys at once).
local keep = tonumber(ARGV[12])
if keep then
  keep = keep + 86400000
  local t = redis.call('TIME')
  if keep > tonumber(t[1]) * 1000 then
    for _, k in ipairs({R, TOK, PQ, SA, CNT}) do
      local e = redis.call('PEXPIRETIME', k)
      if e == -1 or (e >= 0 and e < keep) then redis.call('PEXPIREAT', k, keep) end
    end
  end
end
return {'created', evicted}
"#;

/// get_by_token / get_by_id. ARGV: 'tok' or 'id', the key.
pub(crate) const READ: &str = r#"
local id = ARGV[2]
if ARGV[1] == 'tok' then
  id = redis.call('HGET', TOK, ARGV[2])
  if not id then return nil end
end
return {id, fetch(id)}
"#;

/// touch. ARGV: tenant, id, at.
pub(crate) const TOUCH: &str = r#"
local at = tonumber(ARGV[3])
local h = hdr(ARGV[2])
if not h or h.ten ~= ARGV[1] or not is_live(h, at) or at <= h.ls then return 0 end
h.r[9] = ARGV[3]
save(h)
h.ls = at
redis.call('ZADD', PQ, purge_at(h), ARGV[2])
bump_floor(at)
return 1
"#;

/// update. ARGV: tenant, id, expected version, attributes, now, max version.
pub(crate) const UPDATE: &str = r#"
local id, now = ARGV[2], tonumber(ARGV[5])
local h = hdr(id)
if not h or h.ten ~= ARGV[1] or not is_live(h, now) then return {'not_live'} end
if h.ver ~= tonumber(ARGV[3]) then return {'mismatch', fmt(h.ver)} end
if h.ver >= tonumber(ARGV[6]) then return {'capacity'} end
h.r[13] = ARGV[4]
h.r[7] = fmt(h.ver + 1)
save(h)
bump_floor(now)
return {'updated', fetch(id)}
"#;

/// swap_grants. ARGV: tenant, id, expected side blob, new side blob, now.
/// The side blob (element 14) holds the client info, the assurance and the
/// grants; only the grants ever change in a live record, so comparing the
/// blob compares the grants.
pub(crate) const SWAP_GRANTS: &str = r#"
local id, now = ARGV[2], tonumber(ARGV[5])
local h = hdr(id)
if not h or h.ten ~= ARGV[1] or not is_live(h, now) then return {'not_live'} end
if h.r[14] ~= ARGV[3] then return {'changed', fetch(id)} end
h.r[14] = ARGV[4]
save(h)
bump_floor(now)
return {'swapped', fetch(id)}
"#;

/// retire. ARGV: tenant, old id, old token, expected version, successor, now.
pub(crate) const RETIRE: &str = r#"
local id, now = ARGV[2], tonumber(ARGV[6])
local h = hdr(id)
if not h or h.ten ~= ARGV[1] or h.tok ~= ARGV[3] then return {'not_live'} end
if not is_live(h, now) then
  if redis.call('HGET', R, id .. ':x') == ARGV[5] then return {'retired'} end
  return {'not_live'}
end
if h.ver ~= tonumber(ARGV[4]) then return {'mismatch', fmt(h.ver)} end
tombstone(h, 5, now)
redis.call('HSET', R, id .. ':x', ARGV[5])
bump_floor(now)
return {'retired'}
"#;

/// refresh. ARGV: tenant, id, presented, generation, successor, now, grace_until.
pub(crate) const REFRESH: &str = r#"
local id, now, gen = ARGV[2], tonumber(ARGV[6]), tonumber(ARGV[4])
local h = hdr(id)
if not h or h.ten ~= ARGV[1] or not is_live(h, now) then return {'not_live'} end
local r = h.r
if not r[15] then return {'not_live'} end
local rg, rgu = tonumber(r[17]), tonumber(r[19])
if not rg or not rgu then corrupt('refresh state') end
if r[15] == ARGV[3] and rg == gen then
  local ng = rg + 1
  if ng > 4294967295 then ng = 4294967295 end
  local ls = h.ls
  if now > ls then ls = now end
  r[16], r[15], r[17], r[18], r[19], r[9] = ARGV[3], ARGV[5], fmt(ng), ARGV[6], ARGV[7], fmt(ls)
  save(h)
  h.ls = ls
  redis.call('ZADD', PQ, purge_at(h), id)
  bump_floor(now)
  return {'rotated', fetch(id)}
end
if r[16] and r[16] == ARGV[3] and gen + 1 == rg and now < rgu then
  return {'replayed', fetch(id)}
end
tombstone(h, 7, now)
bump_floor(now)
return {'reuse', h.sub or ''}
"#;

/// revoke. ARGV: tenant, id, reason code, now.
pub(crate) const REVOKE: &str = r#"
local id, now = ARGV[2], tonumber(ARGV[4])
local h = hdr(id)
if not h or h.ten ~= ARGV[1] then return {'not_found'} end
if h.st ~= 0 then return {'already'} end
tombstone(h, tonumber(ARGV[3]), now)
bump_floor(now)
return {'revoked', h.sub or ''}
"#;

/// revoke_subject. ARGV: tenant, subject, except ('' = none), reason code, now.
pub(crate) const REVOKE_SUBJECT: &str = r#"
local ten, sub, keep, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local ids = subject_ids(ten, sub)
local hs = {}
local found = false
for _, o in ipairs(ids) do
  local h = hdr(o)
  if h then
    if o == keep then
      if not is_live(h, now) then return {'except_not_live'} end
      found = true
    else
      hs[#hs + 1] = h
    end
  end
end
if keep ~= '' and not found then return {'except_not_live'} end
for _, h in ipairs(hs) do tombstone(h, tonumber(ARGV[4]), now) end
if #hs > 0 then bump_floor(now) end
return {'revoked', #hs}
"#;

/// list_subject. ARGV: tenant, subject, now. Every live session; the
/// caller orders, applies the cursor and the limit.
pub(crate) const LIST_SUBJECT: &str = r#"
local now = tonumber(ARGV[3])
local out = {}
for _, o in ipairs(subject_ids(ARGV[1], ARGV[2])) do
  local h = hdr(o)
  if h and is_live(h, now) then out[#out + 1] = {o, fetch(o)} end
end
return out
"#;

/// list_subjects. ARGV: tenant, now. Every subject with a live session and
/// how many it has; the caller orders, applies the cursor and the limit.
pub(crate) const LIST_SUBJECTS: &str = r#"
local ten, now = ARGV[1], tonumber(ARGV[2])
local pfx = ten .. '|'
local counts, order = {}, {}
for _, m in ipairs(redis.call('ZRANGEBYLEX', SA, '[' .. pfx, '(' .. pfx .. '~')) do
  local rest = string.sub(m, #pfx + 1)
  local bar = string.find(rest, '|', 1, true)
  if not bar then corrupt('subject index') end
  local sub, o = string.sub(rest, 1, bar - 1), string.sub(rest, bar + 1)
  local h = hdr(o)
  if h and is_live(h, now) then
    if not counts[sub] then counts[sub] = 0; order[#order + 1] = sub end
    counts[sub] = counts[sub] + 1
  end
end
local out = {}
for _, s in ipairs(order) do out[#out + 1] = {s, counts[s]} end
return out
"#;

/// purge_expired. ARGV: now, max.
pub(crate) const PURGE: &str = r#"
local now, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
while #out < max do
  local ids = redis.call('ZRANGEBYSCORE', PQ, '-inf', ARGV[1], 'LIMIT', 0, max - #out)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local h = hdr(id)
    if not h then
      redis.call('ZREM', PQ, id)
    elseif purge_at(h) > now then
      redis.call('ZADD', PQ, purge_at(h), id)
    else
      local cause = ''
      if h.st == 0 then
        if now >= h.exp then cause = 'absolute' else cause = 'idle' end
        deactivate(h)
      end
      redis.call('HDEL', R, id, id .. ':x')
      redis.call('HDEL', TOK, h.tok)
      redis.call('ZREM', PQ, id)
      out[#out + 1] = {h.ten, id, h.sub or '', cause, h.tok}
    end
  end
end
if #out > 0 then bump_floor(now) end
return out
"#;

/// persist_clock_floor. ARGV: at.
pub(crate) const PERSIST_FLOOR: &str = r#"
bump_floor(tonumber(ARGV[1]))
return 1
"#;

/// counts. ARGV: tenant.
pub(crate) const COUNTS: &str = r#"
local t = ARGV[1]
return redis.call('HMGET', CNT, t .. ':active', t .. ':anon', t .. ':subjects')
"#;

/// The full text of a write script.
pub(crate) fn write_script(body: &str) -> String {
    format!("#!lua\n{PRELUDE}\n{body}")
}

/// The full text of a read-only script.
pub(crate) fn read_script(body: &str) -> String {
    format!("#!lua flags=no-writes\n{PRELUDE}\n{body}")
}
