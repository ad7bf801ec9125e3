-- sessionkit-postgres, schema version 1.
--
-- Applied by the store in one transaction, under a transaction-level
-- advisory lock, with `search_path` set to the store's schema: every name
-- below is unqualified and lands in that schema. Times are Unix
-- milliseconds; ids are uuids (compared byte-wise, like `SessionId`).
--
-- Lock order, in every function: the `subjects` row, then `sessions` rows,
-- then `counters` rows, then one `clock` row. `touch` and `update` lock no
-- subject row (neither changes which sessions are active).

CREATE TABLE subjects (
  tenant  text NOT NULL,
  subject text COLLATE "C" NOT NULL,       -- byte order for list_subjects
  epoch   bigint NOT NULL DEFAULT 1,       -- revoke_subject bumps it
  active  bigint NOT NULL DEFAULT 0,       -- active sessions of the current epoch
  PRIMARY KEY (tenant, subject));
CREATE INDEX subjects_listed ON subjects (tenant, subject) WHERE active > 0;

-- Why and when each epoch bump revoked the older records; deleted with
-- the subject row (when the subject has no record left).
CREATE TABLE subject_bumps (
  tenant  text NOT NULL,
  subject text COLLATE "C" NOT NULL,
  epoch   bigint NOT NULL,                 -- the epoch the bump moved to
  reason  smallint NOT NULL,
  at      bigint NOT NULL,
  PRIMARY KEY (tenant, subject, epoch));

CREATE TABLE sessions (
  id uuid PRIMARY KEY,                     -- unique store-wide
  tenant text NOT NULL,
  token_hash bytea NOT NULL UNIQUE,        -- unique store-wide; hashes only
  subject text COLLATE "C",                -- NULL: anonymous
  subject_epoch bigint,                    -- NULL when anonymous
  state smallint NOT NULL,                 -- 0 active, else RevokeReason::code
  revoked_at bigint,
  successor uuid,                          -- retired tombstones
  version bigint NOT NULL,
  created_at bigint NOT NULL,
  last_seen_at bigint NOT NULL,            -- no index covers it: touch is HOT
  idle_timeout_ms bigint NOT NULL,
  expires_at bigint NOT NULL,
  auth_time bigint,
  purge_after bigint NOT NULL,             -- <= purge_at(); moved only by purge
  attributes bytea,                        -- JSON text; NULL in a tombstone
  client bytea,                            -- format byte + postcard; NULL in a tombstone
  refresh_current bytea,                   -- pair sessions only; NULL in a tombstone
  refresh_previous bytea,
  refresh_generation bigint,               -- a u32
  refresh_issued_at bigint,
  refresh_grace_until bigint
) WITH (fillfactor = 85);                  -- room for HOT touches
CREATE INDEX sessions_by_subject ON sessions (tenant, subject, created_at DESC, id DESC)
  WHERE state = 0 AND subject IS NOT NULL;
CREATE INDEX sessions_purge ON sessions (purge_after);

-- Per-tenant figures, 16 shards per tenant (upserted), summed by counts.
CREATE TABLE counters (
  tenant    text NOT NULL,
  shard     smallint NOT NULL,
  active    bigint NOT NULL DEFAULT 0,
  anonymous bigint NOT NULL DEFAULT 0,
  subjects  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, shard));

-- The clock floor, 16 shards (every write raises one; the floor is the
-- highest): one row would serialise every write of the store.
CREATE TABLE clock (
  shard smallint PRIMARY KEY CHECK (shard >= 0 AND shard < 16),
  floor bigint NOT NULL);
INSERT INTO clock (shard, floor)
  SELECT g, -9223372036854775808 FROM generate_series(0, 15) g;

-- What a record-returning function answers: an outcome, a number, and
-- the record's columns as `sk_row` reads them (NULL when none).
CREATE TYPE sk_result AS (
  outcome text, n bigint,
  id uuid, tenant text, token_hash bytea, subject text, subject_epoch bigint,
  state smallint, revoked_at bigint, version bigint, created_at bigint,
  last_seen_at bigint, idle_timeout_ms bigint, expires_at bigint, auth_time bigint,
  attributes bytea, client bytea, refresh_current bytea, refresh_previous bytea,
  refresh_generation bigint, refresh_issued_at bigint, refresh_grace_until bigint,
  current_epoch bigint, bump_reason smallint, bump_at bigint);

-- The idle deadline, capped by the absolute one; saturating.
CREATE FUNCTION sk_idle(p_last bigint, p_idle bigint, p_exp bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT LEAST(p_exp, CASE
    WHEN p_idle >= 0 AND p_last > 9223372036854775807 - p_idle THEN 9223372036854775807
    WHEN p_idle < 0 AND p_last < -9223372036854775808 - p_idle THEN -9223372036854775808
    ELSE p_last + p_idle END)
$$;

-- Shard of an id (its last byte), for counters and the clock.
CREATE FUNCTION sk_shard(p_id uuid) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (get_byte(uuid_send(p_id), 15) % 16)::smallint
$$;

-- A record with its subject's current epoch and, when its epoch is stale,
-- the bump that revoked it.
CREATE FUNCTION sk_row(p_id uuid) RETURNS SETOF sk_result
LANGUAGE sql STABLE AS $$
  SELECT 'row'::text, 0::bigint,
         s.id, s.tenant, s.token_hash, s.subject, s.subject_epoch, s.state,
         s.revoked_at, s.version, s.created_at, s.last_seen_at, s.idle_timeout_ms,
         s.expires_at, s.auth_time, s.attributes, s.client, s.refresh_current,
         s.refresh_previous, s.refresh_generation, s.refresh_issued_at,
         s.refresh_grace_until, sub.epoch, b.reason, b.at
    FROM sessions s
    LEFT JOIN subjects sub ON sub.tenant = s.tenant AND sub.subject = s.subject
    LEFT JOIN subject_bumps b
      ON b.tenant = s.tenant AND b.subject = s.subject AND b.epoch = s.subject_epoch + 1
   WHERE s.id = p_id
$$;

-- Raises the clock floor (a shard of it) to p_at.
CREATE FUNCTION sk_raise_floor(p_shard smallint, p_at bigint) RETURNS void
LANGUAGE sql AS $$
  UPDATE clock SET floor = p_at WHERE shard = p_shard AND floor < p_at
$$;

-- Adds to a tenant's counters (one shard row, upserted).
CREATE FUNCTION sk_count(p_tenant text, p_shard smallint, p_active bigint,
                         p_anonymous bigint, p_subjects bigint) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO counters AS c (tenant, shard, active, anonymous, subjects)
  VALUES (p_tenant, p_shard, p_active, p_anonymous, p_subjects)
  ON CONFLICT (tenant, shard) DO UPDATE
    SET active = c.active + EXCLUDED.active,
        anonymous = c.anonymous + EXCLUDED.anonymous,
        subjects = c.subjects + EXCLUDED.subjects
$$;

-- Deletes a subject row (and its bumps) once none of its records is left.
-- The caller holds the subject row's lock.
CREATE FUNCTION sk_drop_subject_if_empty(p_tenant text, p_subject text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM subjects sub
   WHERE sub.tenant = p_tenant AND sub.subject = p_subject AND sub.active = 0
     AND NOT EXISTS (SELECT 1 FROM sessions x
                      WHERE x.tenant = p_tenant AND x.subject = p_subject);
  IF FOUND THEN
    DELETE FROM subject_bumps b WHERE b.tenant = p_tenant AND b.subject = p_subject;
  END IF;
END
$$;

-- Locks the subject row, the first lock of every write that changes
-- which of the subject's sessions are active; its epoch.
CREATE FUNCTION sk_lock_subject(p_tenant text, p_subject text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE v_epoch bigint;
BEGIN
  SELECT sub.epoch INTO v_epoch FROM subjects sub
   WHERE sub.tenant = p_tenant AND sub.subject = p_subject FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'sessionkit corrupt: subject epoch' USING ERRCODE = 'XX001';
  END IF;
  RETURN v_epoch;
END
$$;

-- A tombstone's columns: a session revoked (or retired) is written by
-- `sk_tombstone` alone.
CREATE FUNCTION sk_tombstone(p_id uuid, p_reason smallint, p_at bigint, p_successor uuid)
RETURNS void LANGUAGE sql AS $$
  UPDATE sessions SET state = p_reason, revoked_at = p_at, successor = p_successor,
         attributes = NULL, client = NULL, refresh_current = NULL,
         refresh_previous = NULL, refresh_generation = NULL,
         refresh_issued_at = NULL, refresh_grace_until = NULL,
         purge_after = GREATEST(purge_after, expires_at)
   WHERE id = p_id
$$;

-- One active session of (tenant, subject) is no longer active: subject
-- and tenant figures follow. The caller holds the subject row.
CREATE FUNCTION sk_deactivated(p_id uuid, p_tenant text, p_subject text, p_n bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE v_left bigint;
BEGIN
  IF p_n = 0 THEN RETURN; END IF;
  IF p_subject IS NULL THEN
    PERFORM sk_count(p_tenant, sk_shard(p_id), -p_n, -p_n, 0);
  ELSE
    UPDATE subjects SET active = active - p_n
     WHERE tenant = p_tenant AND subject = p_subject RETURNING active INTO v_left;
    PERFORM sk_count(p_tenant, sk_shard(p_id), -p_n, 0,
                     CASE WHEN v_left = 0 THEN -1 ELSE 0 END);
  END IF;
END
$$;

-- create. Outcomes: created (with the evicted ids), duplicate,
-- subject_limit, anonymous_limit.
CREATE FUNCTION sk_create(
  p_id uuid, p_tenant text, p_token bytea, p_subject text, p_state smallint,
  p_revoked_at bigint, p_version bigint, p_created bigint, p_last_seen bigint,
  p_idle bigint, p_expires bigint, p_auth bigint, p_attributes bytea, p_client bytea,
  p_rc bytea, p_rp bytea, p_rg bigint, p_ri bigint, p_rgu bigint,
  p_now bigint, p_cap bigint, p_refuse boolean, p_replaces uuid, p_anon_cap bigint)
RETURNS TABLE (o_outcome text, o_evicted uuid[])
LANGUAGE plpgsql AS $$
DECLARE
  v_epoch bigint;
  v_active bigint;
  v_live uuid[];
  v_victims uuid[] := '{}';
  v_evicted bigint := 0;
  v_inc bigint := CASE WHEN p_state = 0 THEN 1 ELSE 0 END;
  v_shard smallint := sk_shard(p_id);
  v_purge bigint;
  v_n bigint;
BEGIN
  v_purge := CASE WHEN p_state = 0 THEN sk_idle(p_last_seen, p_idle, p_expires)
                  ELSE p_expires END;
  IF p_subject IS NULL THEN
    INSERT INTO sessions (id, tenant, token_hash, subject, subject_epoch, state, revoked_at,
        version, created_at, last_seen_at, idle_timeout_ms, expires_at, auth_time,
        purge_after, attributes, client, refresh_current, refresh_previous,
        refresh_generation, refresh_issued_at, refresh_grace_until)
      VALUES (p_id, p_tenant, p_token, NULL, NULL, p_state, p_revoked_at, p_version,
        p_created, p_last_seen, p_idle, p_expires, p_auth, v_purge, p_attributes, p_client,
        p_rc, p_rp, p_rg, p_ri, p_rgu)
      ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      RETURN QUERY SELECT 'duplicate'::text, NULL::uuid[];
      RETURN;
    END IF;
    IF p_anon_cap IS NOT NULL AND v_inc = 1 THEN
      -- One lock per tenant for capped anonymous creates (its counter
      -- shard 0, after the row: the lock order): counted and written under
      -- it, so racing creates never overshoot the cap.
      v_shard := 0;
      PERFORM sk_count(p_tenant, 0::smallint, 0, 0, 0);
      SELECT COALESCE(sum(c.anonymous), 0) INTO v_n FROM counters c WHERE c.tenant = p_tenant;
      IF v_n >= p_anon_cap THEN
        DELETE FROM sessions WHERE id = p_id;
        RETURN QUERY SELECT 'anonymous_limit'::text, NULL::uuid[];
        RETURN;
      END IF;
    END IF;
    PERFORM sk_count(p_tenant, v_shard, v_inc, v_inc, 0);
    PERFORM sk_raise_floor(sk_shard(p_id), p_now);
    RETURN QUERY SELECT 'created'::text, '{}'::uuid[];
    RETURN;
  END IF;

  -- A subject session: its subject row first (created if need be; a purge
  -- may delete it between the insert and the lock: then again).
  LOOP
    INSERT INTO subjects (tenant, subject) VALUES (p_tenant, p_subject) ON CONFLICT DO NOTHING;
    SELECT sub.epoch, sub.active INTO v_epoch, v_active FROM subjects sub
     WHERE sub.tenant = p_tenant AND sub.subject = p_subject FOR UPDATE;
    EXIT WHEN FOUND;
  END LOOP;

  INSERT INTO sessions (id, tenant, token_hash, subject, subject_epoch, state, revoked_at,
      version, created_at, last_seen_at, idle_timeout_ms, expires_at, auth_time,
      purge_after, attributes, client, refresh_current, refresh_previous,
      refresh_generation, refresh_issued_at, refresh_grace_until)
    VALUES (p_id, p_tenant, p_token, p_subject, v_epoch, p_state, p_revoked_at, p_version,
      p_created, p_last_seen, p_idle, p_expires, p_auth, v_purge, p_attributes, p_client,
      p_rc, p_rp, p_rg, p_ri, p_rgu)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    PERFORM sk_drop_subject_if_empty(p_tenant, p_subject);
    RETURN QUERY SELECT 'duplicate'::text, NULL::uuid[];
    RETURN;
  END IF;

  IF p_cap IS NOT NULL THEN
    SELECT COALESCE(array_agg(x.id ORDER BY x.last_seen_at, x.id), '{}') INTO v_live
      FROM (SELECT s.id, s.last_seen_at FROM sessions s
             WHERE s.tenant = p_tenant AND s.subject = p_subject AND s.state = 0
               AND s.subject_epoch = v_epoch AND s.id <> p_id
               AND s.id IS DISTINCT FROM p_replaces
               AND p_now < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)) x;
    IF cardinality(v_live) >= p_cap THEN
      IF p_refuse THEN
        DELETE FROM sessions WHERE id = p_id;
        PERFORM sk_drop_subject_if_empty(p_tenant, p_subject);
        RETURN QUERY SELECT 'subject_limit'::text, NULL::uuid[];
        RETURN;
      END IF;
      v_victims := v_live[1 : cardinality(v_live) - p_cap + 1];
      PERFORM sk_tombstone(v, 6::smallint, p_now, NULL) FROM unnest(v_victims) v;
      v_evicted := cardinality(v_victims);
    END IF;
  END IF;

  UPDATE subjects SET active = active + v_inc - v_evicted
   WHERE tenant = p_tenant AND subject = p_subject;
  PERFORM sk_count(p_tenant, v_shard, v_inc - v_evicted, 0,
    (CASE WHEN v_active + v_inc - v_evicted > 0 THEN 1 ELSE 0 END)
    - (CASE WHEN v_active > 0 THEN 1 ELSE 0 END));
  PERFORM sk_raise_floor(v_shard, p_now);
  RETURN QUERY SELECT 'created'::text, v_victims;
END
$$;

-- touch: best-effort, so its commit does not wait for the WAL flush.
CREATE FUNCTION sk_touch(p_tenant text, p_id uuid, p_at bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE sessions s SET last_seen_at = p_at
   WHERE s.id = p_id AND s.tenant = p_tenant AND s.state = 0
     AND p_at > s.last_seen_at
     AND p_at < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)
     AND (s.subject IS NULL OR s.subject_epoch =
          (SELECT sub.epoch FROM subjects sub
            WHERE sub.tenant = s.tenant AND sub.subject = s.subject));
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM sk_raise_floor(sk_shard(p_id), p_at);
  RETURN true;
END
$$;

-- update. Outcomes: updated (the record), mismatch (n = current version),
-- not_live, capacity.
CREATE FUNCTION sk_update(p_tenant text, p_id uuid, p_expected bigint, p_attributes bytea,
                          p_now bigint, p_max bigint) RETURNS SETOF sk_result
LANGUAGE plpgsql AS $$
DECLARE
  r sk_result;
BEGIN
  UPDATE sessions s SET attributes = p_attributes, version = s.version + 1
   WHERE s.id = p_id AND s.tenant = p_tenant AND s.version = p_expected
     AND s.version < p_max AND s.state = 0
     AND p_now < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)
     AND (s.subject IS NULL OR s.subject_epoch =
          (SELECT sub.epoch FROM subjects sub
            WHERE sub.tenant = s.tenant AND sub.subject = s.subject));
  IF FOUND THEN
    PERFORM sk_raise_floor(sk_shard(p_id), p_now);
    SELECT * INTO r FROM sk_row(p_id);
    r.outcome := 'updated';
    RETURN NEXT r;
    RETURN;
  END IF;
  -- Nothing written: read the row once to say which refusal it was.
  SELECT * INTO r FROM sk_row(p_id);
  IF NOT FOUND OR r.tenant <> p_tenant OR r.state <> 0
     OR (r.subject IS NOT NULL AND r.subject_epoch IS DISTINCT FROM r.current_epoch)
     OR p_now >= sk_idle(r.last_seen_at, r.idle_timeout_ms, r.expires_at) THEN
    r.outcome := 'not_live';
  ELSIF r.version <> p_expected THEN
    r.outcome := 'mismatch';
    r.n := r.version;
  ELSE
    r.outcome := 'capacity';
  END IF;
  RETURN NEXT r;
END
$$;

-- retire. Outcomes: retired, not_live, mismatch (n = current version).
CREATE FUNCTION sk_retire(p_tenant text, p_old uuid, p_hash bytea, p_expected bigint,
                          p_successor uuid, p_now bigint)
RETURNS TABLE (o_outcome text, o_n bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_subject text;
  v_tenant text;
  v_epoch bigint;
  r sessions%ROWTYPE;
BEGIN
  SELECT s.subject, s.tenant INTO v_subject, v_tenant FROM sessions s WHERE s.id = p_old;
  IF NOT FOUND OR v_tenant <> p_tenant THEN
    RETURN QUERY SELECT 'not_live'::text, 0::bigint;
    RETURN;
  END IF;
  IF v_subject IS NOT NULL THEN
    v_epoch := sk_lock_subject(p_tenant, v_subject);
  END IF;
  SELECT * INTO r FROM sessions s WHERE s.id = p_old FOR UPDATE;
  IF NOT FOUND OR r.token_hash <> p_hash THEN
    RETURN QUERY SELECT 'not_live'::text, 0::bigint;
    RETURN;
  END IF;
  IF r.state <> 0 OR (v_subject IS NOT NULL AND r.subject_epoch <> v_epoch)
     OR p_now >= sk_idle(r.last_seen_at, r.idle_timeout_ms, r.expires_at) THEN
    IF r.state = 5 AND r.successor = p_successor THEN
      RETURN QUERY SELECT 'retired'::text, 0::bigint;
    ELSE
      RETURN QUERY SELECT 'not_live'::text, 0::bigint;
    END IF;
    RETURN;
  END IF;
  IF r.version <> p_expected THEN
    RETURN QUERY SELECT 'mismatch'::text, r.version;
    RETURN;
  END IF;
  PERFORM sk_tombstone(p_old, 5::smallint, p_now, p_successor);
  PERFORM sk_deactivated(p_old, p_tenant, v_subject, 1);
  PERFORM sk_raise_floor(sk_shard(p_old), p_now);
  RETURN QUERY SELECT 'retired'::text, 0::bigint;
END
$$;

-- refresh. Outcomes: rotated / replayed (the record), reuse (the subject
-- in the record columns), not_live.
CREATE FUNCTION sk_refresh(p_tenant text, p_id uuid, p_presented bytea, p_generation bigint,
                           p_successor bytea, p_now bigint, p_grace bigint)
RETURNS SETOF sk_result
LANGUAGE plpgsql AS $$
DECLARE
  v_subject text;
  v_tenant text;
  v_epoch bigint;
  r sessions%ROWTYPE;
  o sk_result;
BEGIN
  SELECT s.subject, s.tenant INTO v_subject, v_tenant FROM sessions s WHERE s.id = p_id;
  IF NOT FOUND OR v_tenant <> p_tenant THEN
    o.outcome := 'not_live';
    RETURN NEXT o;
    RETURN;
  END IF;
  IF v_subject IS NOT NULL THEN
    v_epoch := sk_lock_subject(p_tenant, v_subject);
  END IF;
  SELECT * INTO r FROM sessions s WHERE s.id = p_id FOR UPDATE;
  IF NOT FOUND OR r.state <> 0 OR r.refresh_current IS NULL
     OR (v_subject IS NOT NULL AND r.subject_epoch <> v_epoch)
     OR p_now >= sk_idle(r.last_seen_at, r.idle_timeout_ms, r.expires_at) THEN
    o.outcome := 'not_live';
    RETURN NEXT o;
    RETURN;
  END IF;
  IF r.refresh_current = p_presented AND r.refresh_generation = p_generation THEN
    UPDATE sessions SET refresh_previous = refresh_current, refresh_current = p_successor,
           refresh_generation = LEAST(refresh_generation + 1, 4294967295),
           refresh_issued_at = p_now, refresh_grace_until = p_grace,
           last_seen_at = GREATEST(last_seen_at, p_now)
     WHERE id = p_id;
    PERFORM sk_raise_floor(sk_shard(p_id), p_now);
    SELECT * INTO o FROM sk_row(p_id);
    o.outcome := 'rotated';
    RETURN NEXT o;
    RETURN;
  END IF;
  IF r.refresh_previous = p_presented AND r.refresh_generation = p_generation + 1
     AND p_now < r.refresh_grace_until THEN
    SELECT * INTO o FROM sk_row(p_id);
    o.outcome := 'replayed';
    RETURN NEXT o;
    RETURN;
  END IF;
  -- Reuse of an old token: the session is revoked in this same step.
  PERFORM sk_tombstone(p_id, 7::smallint, p_now, NULL);
  PERFORM sk_deactivated(p_id, p_tenant, v_subject, 1);
  PERFORM sk_raise_floor(sk_shard(p_id), p_now);
  o.outcome := 'reuse';
  o.subject := v_subject;
  RETURN NEXT o;
END
$$;

-- revoke. Outcomes: revoked (with the subject), already, not_found.
CREATE FUNCTION sk_revoke(p_tenant text, p_id uuid, p_reason smallint, p_now bigint)
RETURNS TABLE (o_outcome text, o_subject text)
LANGUAGE plpgsql AS $$
DECLARE
  v_subject text;
  v_tenant text;
  v_epoch bigint;
  r sessions%ROWTYPE;
BEGIN
  SELECT s.subject, s.tenant INTO v_subject, v_tenant FROM sessions s WHERE s.id = p_id;
  IF NOT FOUND OR v_tenant <> p_tenant THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::text;
    RETURN;
  END IF;
  IF v_subject IS NOT NULL THEN
    v_epoch := sk_lock_subject(p_tenant, v_subject);
  END IF;
  SELECT * INTO r FROM sessions s WHERE s.id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, NULL::text;
    RETURN;
  END IF;
  IF r.state <> 0 OR (v_subject IS NOT NULL AND r.subject_epoch <> v_epoch) THEN
    RETURN QUERY SELECT 'already'::text, NULL::text;
    RETURN;
  END IF;
  PERFORM sk_tombstone(p_id, p_reason, p_now, NULL);
  PERFORM sk_deactivated(p_id, p_tenant, v_subject, 1);
  PERFORM sk_raise_floor(sk_shard(p_id), p_now);
  RETURN QUERY SELECT 'revoked'::text, v_subject;
END
$$;

-- revoke_subject: one epoch bump, however many sessions. Outcomes:
-- revoked (n = how many were active), except_not_live.
CREATE FUNCTION sk_revoke_subject(p_tenant text, p_subject text, p_except uuid,
                                  p_reason smallint, p_now bigint)
RETURNS TABLE (o_outcome text, o_n bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_epoch bigint;
  v_active bigint;
  v_kept bigint := 0;
  v_shard smallint := (hashtext(p_subject) & 15)::smallint;
BEGIN
  SELECT sub.epoch, sub.active INTO v_epoch, v_active FROM subjects sub
   WHERE sub.tenant = p_tenant AND sub.subject = p_subject FOR UPDATE;
  IF NOT FOUND THEN
    IF p_except IS NULL THEN
      RETURN QUERY SELECT 'revoked'::text, 0::bigint;
    ELSE
      RETURN QUERY SELECT 'except_not_live'::text, 0::bigint;
    END IF;
    RETURN;
  END IF;
  IF p_except IS NOT NULL THEN
    PERFORM 1 FROM sessions s
     WHERE s.id = p_except AND s.tenant = p_tenant AND s.subject = p_subject
       AND s.state = 0 AND s.subject_epoch = v_epoch
       AND p_now < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)
       FOR UPDATE;
    IF NOT FOUND THEN
      RETURN QUERY SELECT 'except_not_live'::text, 0::bigint;
      RETURN;
    END IF;
    v_kept := 1;
  END IF;
  IF v_active - v_kept <= 0 THEN
    RETURN QUERY SELECT 'revoked'::text, 0::bigint;
    RETURN;
  END IF;
  UPDATE subjects SET epoch = v_epoch + 1, active = v_kept
   WHERE tenant = p_tenant AND subject = p_subject;
  INSERT INTO subject_bumps (tenant, subject, epoch, reason, at)
    VALUES (p_tenant, p_subject, v_epoch + 1, p_reason, p_now);
  IF p_except IS NOT NULL THEN
    UPDATE sessions SET subject_epoch = v_epoch + 1 WHERE id = p_except;
  END IF;
  PERFORM sk_count(p_tenant, v_shard,
                   -(v_active - v_kept), 0, CASE WHEN v_kept = 0 THEN -1 ELSE 0 END);
  PERFORM sk_raise_floor(v_shard, p_now);
  RETURN QUERY SELECT 'revoked'::text, v_active - v_kept;
END
$$;

-- purge: up to p_max records whose purge time has passed, in batches that
-- lock nothing another transaction holds (SKIP LOCKED) and never the table.
-- A record found not yet due is re-filed (purge_after moves forward); a
-- record revoked by an epoch bump is scrubbed into a plain tombstone.
CREATE FUNCTION sk_purge(p_now bigint, p_max integer)
RETURNS TABLE (o_tenant text, o_id uuid, o_subject text, o_cause text)
LANGUAGE plpgsql AS $$
DECLARE
  v_left integer := p_max;
  v_seen uuid[] := '{}';
  v_batch uuid[];
  v_deltas jsonb := '{}';
  c record;
  r sessions%ROWTYPE;
  v_epoch bigint;
  v_bump record;
  v_due bigint;
  v_cause text;
  v_left_active bigint;
  v_any boolean := false;
  k text;
BEGIN
  WHILE v_left > 0 LOOP
    SELECT array_agg(x.id) INTO v_batch FROM (
      SELECT s.id FROM sessions s
       WHERE s.purge_after <= p_now AND NOT (s.id = ANY (v_seen))
       ORDER BY s.purge_after LIMIT GREATEST(v_left, 16)) x;
    EXIT WHEN v_batch IS NULL;
    v_seen := v_seen || v_batch;
    FOR c IN SELECT s.id, s.tenant, s.subject FROM sessions s WHERE s.id = ANY (v_batch)
              ORDER BY s.tenant, s.subject NULLS FIRST, s.id LOOP
      EXIT WHEN v_left <= 0;
      v_epoch := NULL;
      IF c.subject IS NOT NULL THEN
        SELECT sub.epoch INTO v_epoch FROM subjects sub
         WHERE sub.tenant = c.tenant AND sub.subject = c.subject FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;            -- busy: the next purge takes it
      END IF;
      SELECT * INTO r FROM sessions s WHERE s.id = c.id AND s.purge_after <= p_now
        FOR UPDATE SKIP LOCKED;
      CONTINUE WHEN NOT FOUND;
      v_cause := NULL;
      IF r.state <> 0 THEN
        v_due := r.expires_at;
      ELSIF r.subject IS NOT NULL AND r.subject_epoch < v_epoch THEN
        -- Revoked by a bump: a tombstone until its absolute deadline.
        v_due := r.expires_at;
        IF v_due > p_now THEN
          SELECT b.reason, b.at INTO v_bump FROM subject_bumps b
           WHERE b.tenant = r.tenant AND b.subject = r.subject AND b.epoch = r.subject_epoch + 1;
          IF FOUND THEN
            PERFORM sk_tombstone(r.id, v_bump.reason, v_bump.at, NULL);
          END IF;
          CONTINUE;
        END IF;
      ELSE
        v_due := sk_idle(r.last_seen_at, r.idle_timeout_ms, r.expires_at);
        v_cause := CASE WHEN p_now >= r.expires_at THEN 'absolute' ELSE 'idle' END;
      END IF;
      IF v_due > p_now THEN
        UPDATE sessions SET purge_after = v_due WHERE id = r.id;
        CONTINUE;
      END IF;
      DELETE FROM sessions WHERE id = r.id;
      IF v_cause IS NOT NULL THEN
        -- An active session expired: figures follow (applied at the end,
        -- in tenant order, so that purgers never wait on each other).
        k := r.tenant;
        IF r.subject IS NULL THEN
          v_deltas := jsonb_set(v_deltas, ARRAY[k], jsonb_build_array(
            COALESCE((v_deltas -> k ->> 0)::bigint, 0) + 1,
            COALESCE((v_deltas -> k ->> 1)::bigint, 0) + 1,
            COALESCE((v_deltas -> k ->> 2)::bigint, 0)));
        ELSE
          UPDATE subjects SET active = active - 1
           WHERE tenant = r.tenant AND subject = r.subject RETURNING active INTO v_left_active;
          v_deltas := jsonb_set(v_deltas, ARRAY[k], jsonb_build_array(
            COALESCE((v_deltas -> k ->> 0)::bigint, 0) + 1,
            COALESCE((v_deltas -> k ->> 1)::bigint, 0),
            COALESCE((v_deltas -> k ->> 2)::bigint, 0)
              + CASE WHEN v_left_active = 0 THEN 1 ELSE 0 END));
        END IF;
      END IF;
      IF r.subject IS NOT NULL THEN
        PERFORM sk_drop_subject_if_empty(r.tenant, r.subject);
      END IF;
      v_left := v_left - 1;
      v_any := true;
      o_tenant := r.tenant;
      o_id := r.id;
      o_subject := r.subject;
      o_cause := v_cause;
      RETURN NEXT;
    END LOOP;
  END LOOP;
  FOR k IN SELECT jsonb_object_keys(v_deltas) ORDER BY 1 LOOP
    PERFORM sk_count(k, 0::smallint, -((v_deltas -> k ->> 0)::bigint),
                     -((v_deltas -> k ->> 1)::bigint), -((v_deltas -> k ->> 2)::bigint));
  END LOOP;
  IF v_any THEN
    PERFORM sk_raise_floor(0::smallint, p_now);
  END IF;
END
$$;

-- persist_clock_floor: best-effort, so its commit does not wait for the
-- WAL flush.
CREATE FUNCTION sk_persist_floor(p_at bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM sk_raise_floor(0::smallint, p_at);
END
$$;
