//! Cluster only: the pointers from a token hash or an id to the shard that
//! holds the record (see `layout.rs`). Each is a string key set with `NX`
//! before the record's script and deleted after the record is purged, with
//! a TTL past the session's absolute deadline as a backstop. A pointer
//! never changes, so reading it and then the record is as good as one
//! read; a pointer whose record is gone reads as "no session".

use redis::Value;
use sessionkit_core::ids::SessionId;
use sessionkit_core::record::SessionRecord;
use sessionkit_core::store::StoreResult;
use sessionkit_core::time::Millis;
use sessionkit_core::token::TokenHash;

use crate::RedisStore;
use crate::layout::Layout;
use crate::reply::{corrupt, int};

/// How long a pointer outlives its session's absolute deadline.
const POINTER_MARGIN_MS: i64 = 24 * 3600 * 1000;

impl RedisStore {
    /// The shard a pointer key names; `None` when there is no pointer
    /// (no such session). Standalone: always shard 0.
    pub(crate) async fn locate(
        &self,
        pointer: impl FnOnce(&Layout) -> String,
        id: Option<SessionId>,
    ) -> StoreResult<Option<usize>> {
        if !self.layout.pointers() {
            return Ok(Some(0));
        }
        let v = self
            .cmd(redis::cmd("GET").arg(pointer(&self.layout)), id)
            .await?;
        match v {
            Value::Nil => Ok(None),
            other => int(&other)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|&i| i < self.layout.shards().len())
                .map(Some)
                .ok_or_else(|| corrupt("shard pointer", id)),
        }
    }

    /// The shard holding session `id`, if any.
    pub(crate) async fn shard_of_id(&self, id: SessionId) -> StoreResult<Option<usize>> {
        self.locate(|l| l.id_pointer(id), Some(id)).await
    }

    /// Cluster: claims the token and id pointers for a new record in
    /// `shard`. `false`: one was taken (a duplicate); the other is released.
    pub(crate) async fn claim_pointers(
        &self,
        rec: &SessionRecord,
        shard: usize,
        now: Millis,
    ) -> StoreResult<bool> {
        let ttl = rec
            .expires_at
            .as_millis()
            .saturating_sub(now.as_millis())
            .saturating_add(POINTER_MARGIN_MS)
            .max(1);
        let (t, i) = (
            self.layout.token_pointer(&rec.token_hash),
            self.layout.id_pointer(rec.id),
        );
        let set = |k: &str| {
            let mut c = redis::cmd("SET");
            c.arg(k).arg(shard).arg("NX").arg("PX").arg(ttl);
            c
        };
        let r = self.each(&[set(&t), set(&i)], Some(rec.id)).await?;
        let ok = |v: Option<&Value>| matches!(v, Some(Value::Okay | Value::SimpleString(_)));
        let (ts, is) = (ok(r.first()), ok(r.get(1)));
        if ts && is {
            return Ok(true);
        }
        let undo: Vec<redis::Cmd> = [(ts, &t), (is, &i)]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, k)| redis::cmd("DEL").arg(k).clone())
            .collect();
        self.each(&undo, Some(rec.id)).await?;
        Ok(false)
    }

    /// Cluster: drops the pointers of records that are gone (best-effort:
    /// their TTL is the backstop).
    pub(crate) async fn release_pointers(&self, gone: &[(SessionId, TokenHash)]) {
        if !self.layout.pointers() || gone.is_empty() {
            return;
        }
        let mut dels = Vec::with_capacity(gone.len() * 2);
        for (id, h) in gone {
            dels.push(redis::cmd("DEL").arg(self.layout.token_pointer(h)).clone());
            dels.push(redis::cmd("DEL").arg(self.layout.id_pointer(*id)).clone());
        }
        if let Err(e) = self.each(&dels, None).await {
            tracing::debug!(error = %e, "redis: pointers left to their TTL");
        }
    }
}
