//! Creates per second on one core: `n` typical sessions created one after
//! another into a fresh engine on `MemoryStore` (every index, rehash and
//! page fault included), then the same count of prebuilt records into a
//! fresh `MemoryStore` alone (the store's share), then the engine alone on
//! a store that keeps nothing (the engine's share). Inputs are built in
//! batches outside the timed part. Best of three rounds.
//!
//! `cargo bench -p sessionkit --bench create` (N with SESSIONKIT_BENCH_N;
//! SESSIONKIT_BENCH_ENGINE_ONLY=1 skips the store-alone rounds and
//! SESSIONKIT_BENCH_STORE_ONLY=1 the engine rounds, for profiling).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use sessionkit::MemoryStore;
use sessionkit_core::store::{
    Change, CreateOutcome, GrantSwap, GrantSwapRequest, Limits, ListCursor, Purged, RefreshOutcome,
    RefreshRequest, RetireOutcome, RetireRequest, RevokeOutcome, RevokeSubjectOutcome, StoreResult,
    UpdateOutcome,
};
use sessionkit_core::{
    Attributes, Clock, DurationMs, Millis, RevokeReason, SessionId, SessionRecord, SessionState,
    SessionStore, SessionToken, Subject, SystemClock, TenantId, TokenHash,
};

use common::{engine, engine_on, ready, typical};

/// A store that accepts every create and keeps nothing: what a create costs
/// the engine alone. Everything else is the memory store's.
#[derive(Clone, Default)]
struct Discard(MemoryStore);

impl SessionStore for Discard {
    async fn create(
        &self,
        _rec: SessionRecord,
        _limits: Limits,
        _now: Millis,
    ) -> StoreResult<CreateOutcome> {
        Ok(CreateOutcome::Created {
            evicted: Vec::new(),
        })
    }
    async fn get_by_token(&self, t: TenantId, h: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.0.get_by_token(t, h).await
    }
    async fn get_by_id(&self, t: TenantId, id: SessionId) -> StoreResult<Option<SessionRecord>> {
        self.0.get_by_id(t, id).await
    }
    async fn touch(&self, t: TenantId, id: SessionId, at: Millis) -> StoreResult<bool> {
        self.0.touch(t, id, at).await
    }
    async fn update(
        &self,
        t: TenantId,
        id: SessionId,
        v: u64,
        c: Change,
        now: Millis,
    ) -> StoreResult<UpdateOutcome> {
        self.0.update(t, id, v, c, now).await
    }
    async fn retire(&self, req: RetireRequest) -> StoreResult<RetireOutcome> {
        self.0.retire(req).await
    }
    async fn refresh(&self, req: RefreshRequest) -> StoreResult<RefreshOutcome> {
        self.0.refresh(req).await
    }
    async fn swap_grants(&self, req: GrantSwapRequest) -> StoreResult<GrantSwap> {
        self.0.swap_grants(req).await
    }
    async fn revoke(
        &self,
        t: TenantId,
        id: SessionId,
        r: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeOutcome> {
        self.0.revoke(t, id, r, now).await
    }
    async fn revoke_subject(
        &self,
        t: TenantId,
        s: &Subject,
        except: Option<SessionId>,
        r: RevokeReason,
        now: Millis,
    ) -> StoreResult<RevokeSubjectOutcome> {
        self.0.revoke_subject(t, s, except, r, now).await
    }
    async fn list_subject(
        &self,
        t: TenantId,
        s: &Subject,
        now: Millis,
        after: Option<ListCursor>,
        limit: usize,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.0.list_subject(t, s, now, after, limit).await
    }
    async fn purge_expired(&self, now: Millis, max: usize) -> StoreResult<Vec<Purged>> {
        self.0.purge_expired(now, max).await
    }
    async fn clock_floor(&self) -> StoreResult<Millis> {
        self.0.clock_floor().await
    }
    async fn persist_clock_floor(&self, at: Millis) -> StoreResult<()> {
        self.0.persist_clock_floor(at).await
    }
}

/// Batch size: requests are built a batch at a time, untimed, so that
/// they are in cache when created, as a request just parsed is.
const BATCH: u64 = 1000;

/// Runs `f` over `n` inputs made by `make`, timing only `f`; returns
/// operations per second.
fn rate<T>(n: u64, mut make: impl FnMut(u64) -> T, mut f: impl FnMut(T)) -> f64 {
    let mut timed = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let batch: Vec<T> = (i..n.min(i + BATCH)).map(&mut make).collect();
        i += batch.len() as u64;
        let t = Instant::now();
        for x in batch {
            f(x);
        }
        timed += t.elapsed();
    }
    n as f64 / timed.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("SESSIONKIT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let only = |what: &str| std::env::var_os(what).is_some();
    let attrs =
        Attributes::from_json(typical(0).attributes.unwrap().get(), &Default::default()).unwrap();
    let (mut engine_best, mut store_best, mut alone_best) = (0f64, 0f64, 0f64);
    for round in 1..=3 {
        let mut line = format!("round {round}:");
        if !only("SESSIONKIT_BENCH_STORE_ONLY") {
            let e = engine();
            let r = rate(n, typical, |req| {
                ready(e.create(TenantId::DEFAULT, req)).unwrap();
            });
            line += &format!(" engine {r:.0} creates/s");
            engine_best = engine_best.max(r);
        }
        if !only("SESSIONKIT_BENCH_ENGINE_ONLY") {
            let now = SystemClock.now();
            let record = |i: u64| SessionRecord {
                tenant: TenantId::DEFAULT,
                id: SessionId::generate(),
                token_hash: SessionToken::generate().unwrap().hash(),
                subject: Some(Subject::new(&format!("user-{i:011}")).unwrap()),
                created_at: now,
                last_seen_at: now,
                idle_timeout: DurationMs::from_secs(1800),
                expires_at: now.saturating_add(DurationMs::from_secs(86_400)),
                auth_time: Some(now),
                attributes: attrs.clone(),
                client: Default::default(),
                version: 1,
                state: SessionState::Active,
                refresh: None,
                assurance: None,
                grants: None,
            };
            let store = MemoryStore::new();
            let s = rate(n, record, |rec| {
                ready(store.create(rec, Limits::default(), now)).unwrap();
            });
            let e = engine_on(Discard::default());
            let a = rate(n, typical, |req| {
                ready(e.create(TenantId::DEFAULT, req)).unwrap();
            });
            line += &format!(", store alone {s:.0} creates/s, engine alone {a:.0} creates/s");
            store_best = store_best.max(s);
            alone_best = alone_best.max(a);
        }
        println!("{line}");
    }
    let us = |r: f64| 1e6 / r;
    println!(
        "create, {n} sessions, one core, best of 3: engine on MemoryStore {engine_best:.0}/s \
         ({:.2} µs each); MemoryStore alone {store_best:.0}/s ({:.2} µs); engine alone, \
         on a store that keeps nothing, {alone_best:.0}/s ({:.2} µs)",
        us(engine_best),
        us(store_best),
        us(alone_best)
    );
}
