//! The statements the store prepares (once per pooled connection, by
//! deadpool's statement cache). Writes call the plpgsql functions of the
//! migrations: one statement, one round trip, one transaction each.

use std::sync::LazyLock;

use crate::codec::RECORD_COLUMNS;

/// A record by token hash in a tenant.
pub(crate) static GET_BY_TOKEN: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RECORD_COLUMNS} WHERE s.token_hash = $1 AND s.tenant = $2"));

/// A record by id in a tenant.
pub(crate) static GET_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RECORD_COLUMNS} WHERE s.id = $1 AND s.tenant = $2"));

/// A page of a subject's live sessions, newest first (`sessions_by_subject`).
pub(crate) static LIST_SUBJECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS}
          WHERE s.tenant = $1 AND s.subject = $2 AND s.state = 0
            AND s.subject_epoch = sub.epoch
            AND $3 < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)
            AND ($4::bigint IS NULL OR (s.created_at, s.id) < ($4::bigint, $5::uuid))
          ORDER BY s.created_at DESC, s.id DESC
          LIMIT $6"
    )
});

/// Subjects with an active session, one of them live at `$2`, in byte
/// order after `$3` (`subjects_listed`).
pub(crate) const LIST_SUBJECTS: &str = "SELECT sub.subject, sub.active FROM subjects sub
  WHERE sub.tenant = $1 AND sub.active > 0
    AND ($3::text IS NULL OR sub.subject > $3::text COLLATE \"C\")
    AND EXISTS (SELECT 1 FROM sessions s
                 WHERE s.tenant = sub.tenant AND s.subject = sub.subject AND s.state = 0
                   AND s.subject_epoch = sub.epoch
                   AND $2 < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at))
  ORDER BY sub.subject
  LIMIT $4";

/// A tenant's figures: one snapshot of its counter shards.
pub(crate) const COUNTS: &str = "SELECT COALESCE(sum(active), 0)::bigint,
  COALESCE(sum(anonymous), 0)::bigint, COALESCE(sum(subjects), 0)::bigint
  FROM counters WHERE tenant = $1";

/// The clock floor: the highest of its shards.
pub(crate) const CLOCK_FLOOR: &str = "SELECT max(floor) FROM clock";

/// `create`.
pub(crate) const CREATE: &str = "SELECT o_outcome, o_evicted FROM sk_create($1, $2, $3, $4, $5,
  $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)";

/// `touch`.
pub(crate) const TOUCH: &str = "SELECT sk_touch($1, $2, $3)";

/// `update`.
pub(crate) const UPDATE: &str = "SELECT * FROM sk_update($1, $2, $3, $4, $5, $6)";

/// `swap_grants`: replaces the side blob (`client`: client info, assurance
/// and grants, of which only the grants change in a live record) if it is
/// still `$4` and the session is live at `$5` (as `sk_update` checks it),
/// and raises the clock floor as every write does.
pub(crate) const SWAP_GRANTS: &str = "WITH u AS (UPDATE sessions s SET client = $3
  WHERE s.id = $2 AND s.tenant = $1 AND s.state = 0 AND s.client = $4
    AND $5 < sk_idle(s.last_seen_at, s.idle_timeout_ms, s.expires_at)
    AND (s.subject IS NULL OR s.subject_epoch =
         (SELECT sub.epoch FROM subjects sub
           WHERE sub.tenant = s.tenant AND sub.subject = s.subject))
  RETURNING s.id)
  SELECT u.id, sk_raise_floor(sk_shard(u.id), $5)::text FROM u";

/// `retire`.
pub(crate) const RETIRE: &str = "SELECT o_outcome, o_n FROM sk_retire($1, $2, $3, $4, $5, $6)";

/// `refresh`.
pub(crate) const REFRESH: &str = "SELECT * FROM sk_refresh($1, $2, $3, $4, $5, $6, $7)";

/// `revoke`.
pub(crate) const REVOKE: &str = "SELECT o_outcome, o_subject FROM sk_revoke($1, $2, $3, $4)";

/// `revoke_subject`.
pub(crate) const REVOKE_SUBJECT: &str =
    "SELECT o_outcome, o_n FROM sk_revoke_subject($1, $2, $3, $4, $5)";

/// `purge_expired`.
pub(crate) const PURGE: &str = "SELECT o_tenant, o_id, o_subject, o_cause FROM sk_purge($1, $2)";

/// `persist_clock_floor`.
pub(crate) const PERSIST_FLOOR: &str = "SELECT sk_persist_floor($1)";
