//! Crash test: nothing acknowledged is lost by `kill -9`, and nothing is
//! half-applied.
//!
//! The parent re-runs this test binary as a child (`crash_child`, with
//! `SESSIONKIT_CRASH_CHILD_DIR` set). The child runs creates, attribute
//! patches, refreshes, upgrades and revokes from 16 tasks as fast as it can
//! against a [`RedbStore`] (every session a pair session, so refresh rotations too),
//! printing `B …` before it starts each operation and `A …`
//! once the store acknowledged it. The parent `kill -9`s it at a random
//! moment (sometimes while it is still opening the file), reopens the
//! store, and checks every session it ever heard of: each is in the state
//! of its last acknowledged operation, or — only if an operation on it was
//! in flight — in the state that operation leads to; an upgrade in flight
//! is all or nothing (old revoked *and* new present, or neither). Every
//! record must decode, and no record may exist that no line announced.
//!
//! Cycles: 200 by default, `SESSIONKIT_CRASH_CYCLES` for more. One cycle in
//! five skips the check, so that the next child opens a file a crash left
//! (redb's repair path) and may itself be killed there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rand::Rng;
use serde_json::json;
use sessionkit_core::refresh::{RefreshState, RefreshToken};
use sessionkit_core::store::{
    Change, CreateOutcome, Limits, RefreshOutcome, RefreshRequest, RetireOutcome, RetireRequest,
    RevokeOutcome, UpdateOutcome,
};
use sessionkit_core::{
    DurationMs, Millis, RevokeReason, SessionId, SessionRecord, SessionState, SessionStore,
    StoreAdmin, TenantId, TokenHash,
};
use sessionkit_redb::RedbStore;

const CHILD_ENV: &str = "SESSIONKIT_CRASH_CHILD_DIR";
const BASE_ENV: &str = "SESSIONKIT_CRASH_CHILD_BASE";
const T: TenantId = TenantId::DEFAULT;
const TASKS: usize = 16;

/// The child: does nothing unless started by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let base: i64 = std::env::var(BASE_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rt = rt();
    rt.block_on(child(Path::new(&dir), base));
}

fn say(line: String) {
    // One write per line (stdout is line-buffered), so a kill never leaves
    // a line that looks complete but is not.
    println!("{line}");
}

async fn child(dir: &Path, base: i64) {
    let store = RedbStore::open(dir).unwrap_or_else(|e| {
        say(format!("X open {e}"));
        panic!("open: {e}")
    });
    say("READY".into());
    let clock = Arc::new(AtomicI64::new(T0.as_millis() + base));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            worker(store, clock, task).await;
        }));
    }
    for t in tasks {
        if let Err(e) = t.await {
            say(format!("X task {e}"));
            std::process::exit(3);
        }
    }
}

struct Mine {
    id: SessionId,
    hash: TokenHash,
    version: u64,
    /// The session's current refresh token.
    refresh: RefreshToken,
}

impl Mine {
    fn of(r: &SessionRecord, refresh: RefreshToken) -> Mine {
        Mine {
            id: r.id,
            hash: r.token_hash,
            version: r.version,
            refresh,
        }
    }
}

/// A pair session (so refreshes apply) and its first refresh token.
fn new_record(task: usize, now: Millis) -> (SessionRecord, RefreshToken) {
    let mut r = session(Some(&format!("task-{task}")), now);
    r.idle_timeout = DurationMs::from_secs(1 << 30);
    r.expires_at = now.saturating_add(DurationMs::from_secs(1 << 31));
    r.attributes = attrs(json!({"n": 1}));
    let root = RefreshToken::root(r.id).unwrap();
    r.refresh = Some(Box::new(RefreshState::new(&root, now)));
    (r, root)
}

async fn worker(store: RedbStore, clock: Arc<AtomicI64>, task: usize) {
    let key = sessionkit_core::SecretKey::from_bytes([5; 32]);
    let mut live: Vec<Mine> = Vec::new();
    loop {
        let now = Millis::from_millis(clock.fetch_add(1, Ordering::Relaxed));
        let pick: u32 = rand::rng().random_range(0..100);
        if live.len() < 3 || pick < 30 {
            let (r, root) = new_record(task, now);
            say(format!("B C {}", r.id));
            let out = store.create(r.clone(), no_limits(), now).await;
            match out {
                Ok(CreateOutcome::Created { .. }) => say(format!("A C {}", r.id)),
                other => fail(format!("create {other:?}")),
            }
            live.push(Mine::of(&r, root));
            continue;
        }
        let i = rand::rng().random_range(0..live.len());
        if pick < 45 {
            let m = &mut live[i];
            let next = m.refresh.successor(&key);
            let (v, g) = (m.version, next.generation());
            say(format!("B F {} {v} {g}", m.id));
            let out = store
                .refresh(RefreshRequest {
                    tenant: T,
                    id: m.id,
                    presented: m.refresh.hash(),
                    presented_generation: m.refresh.generation(),
                    successor: next.hash(),
                    now,
                    grace_until: now.saturating_add(DurationMs::from_secs(30)),
                })
                .await;
            match out {
                Ok(RefreshOutcome::Rotated(r))
                    if r.refresh.as_ref().is_some_and(|st| st.generation == g) =>
                {
                    say(format!("A F {} {v} {g}", m.id));
                }
                other => fail(format!("refresh {other:?}")),
            }
            m.refresh = next;
        } else if pick < 70 {
            let m = &mut live[i];
            let v = m.version + 1;
            let g = m.refresh.generation();
            say(format!("B P {} {v} {g}", m.id));
            let out = store
                .update(
                    T,
                    m.id,
                    m.version,
                    Change::Attributes(attrs(json!({"n": v}))),
                    now,
                )
                .await;
            match out {
                Ok(UpdateOutcome::Updated(r)) if r.version == v => {
                    say(format!("A P {} {v} {g}", m.id));
                }
                other => fail(format!("update {other:?}")),
            }
            m.version = v;
        } else if pick < 85 {
            let old = live.swap_remove(i);
            let (new, root) = new_record(task, now);
            say(format!("B U {} {}", old.id, new.id));
            // The two steps of an upgrade: the successor, then the retire.
            let limits = Limits {
                replaces: Some(old.id),
                ..no_limits()
            };
            match store.create(new.clone(), limits, now).await {
                Ok(CreateOutcome::Created { .. }) => {}
                other => fail(format!("upgrade's create {other:?}")),
            }
            let out = store
                .retire(RetireRequest {
                    tenant: T,
                    old_id: old.id,
                    old_token_hash: old.hash,
                    expected_version: old.version,
                    successor: new.id,
                    now,
                })
                .await;
            match out {
                Ok(RetireOutcome::Retired) => {
                    say(format!("A U {} {}", old.id, new.id));
                }
                other => fail(format!("upgrade's retire {other:?}")),
            }
            live.push(Mine::of(&new, root));
        } else {
            let old = live.swap_remove(i);
            say(format!("B R {}", old.id));
            match store.revoke(T, old.id, RevokeReason::Logout, now).await {
                Ok(RevokeOutcome::Revoked { .. }) => say(format!("A R {}", old.id)),
                other => fail(format!("revoke {other:?}")),
            }
        }
    }
}

fn fail(msg: String) -> ! {
    say(format!("X {msg}"));
    std::process::exit(3);
}

/// What a session is, as far as the check cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Absent,
    /// Version and refresh generation.
    Active(u64, u32),
    Revoked(RevokeReason),
}

#[derive(Debug)]
struct Expect {
    acked: Val,
    pending: Option<Val>,
}

#[derive(Default)]
struct Model {
    sessions: HashMap<SessionId, Expect>,
    /// Upgrades in flight: (old, new).
    upgrades: Vec<(SessionId, SessionId)>,
    acked_ops: u64,
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

fn active(v: &str, g: &str) -> Val {
    Val::Active(v.parse().unwrap(), g.parse().unwrap())
}

impl Model {
    fn begin(&mut self, sid: SessionId, to: Val) {
        self.sessions
            .entry(sid)
            .or_insert(Expect {
                acked: Val::Absent,
                pending: None,
            })
            .pending = Some(to);
    }

    fn ack(&mut self, sid: SessionId, to: Val) {
        let e = self.sessions.get_mut(&sid).expect("ack without begin");
        e.acked = to;
        e.pending = None;
    }

    fn feed(&mut self, out: &str) -> Result<(), String> {
        let complete = match out.rfind('\n') {
            Some(i) => &out[..i],
            None => "",
        };
        for line in complete.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                ["READY"] => {}
                ["B", "C", s] => self.begin(id(s), Val::Active(1, 0)),
                ["A", "C", s] => self.ack(id(s), Val::Active(1, 0)),
                ["B", "P" | "F", s, v, g] => self.begin(id(s), active(v, g)),
                ["A", "P" | "F", s, v, g] => self.ack(id(s), active(v, g)),
                ["B", "R", s] => self.begin(id(s), Val::Revoked(RevokeReason::Logout)),
                ["A", "R", s] => self.ack(id(s), Val::Revoked(RevokeReason::Logout)),
                ["B", "U", o, n] => {
                    self.begin(id(o), Val::Revoked(RevokeReason::Upgraded));
                    self.begin(id(n), Val::Active(1, 0));
                    self.upgrades.push((id(o), id(n)));
                }
                ["A", "U", o, n] => {
                    self.ack(id(o), Val::Revoked(RevokeReason::Upgraded));
                    self.ack(id(n), Val::Active(1, 0));
                    self.upgrades.retain(|p| *p != (id(o), id(n)));
                }
                ["X", ..] => return Err(format!("child failed: {line}")),
                _ => {
                    // Test-harness chatter ("running 1 test", …).
                    continue;
                }
            }
            if line.starts_with('A') {
                self.acked_ops += 1;
            }
        }
        Ok(())
    }

    /// Checks the reopened store against the model, then adopts what it
    /// found as the new acknowledged state.
    async fn check(&mut self, store: &RedbStore) -> Result<(), String> {
        let report = store.open_report();
        if !report.skipped.is_empty() {
            return Err(format!("unreadable records: {:?}", report.skipped));
        }
        let mut found = HashMap::new();
        for (sid, e) in &self.sessions {
            let got = match store.get_by_id(T, *sid).await.map_err(|e| e.to_string())? {
                None => Val::Absent,
                Some(r) => match r.state {
                    SessionState::Active => {
                        let n = r.attributes.to_value()["n"].as_u64();
                        if n != Some(r.version) {
                            return Err(format!("{sid}: version {} with n={n:?}", r.version));
                        }
                        let g = r.refresh.as_ref().map(|st| st.generation);
                        let Some(g) = g else {
                            return Err(format!("{sid}: its refresh state is gone"));
                        };
                        Val::Active(r.version, g)
                    }
                    SessionState::Revoked { reason, .. } => Val::Revoked(reason),
                },
            };
            if got != e.acked && Some(got) != e.pending {
                return Err(format!(
                    "{sid}: found {got:?}, acknowledged {:?}, in flight {:?}",
                    e.acked, e.pending
                ));
            }
            found.insert(*sid, got);
        }
        for (o, n) in &self.upgrades {
            let old_done = found[o] == Val::Revoked(RevokeReason::Upgraded);
            let new_done = found[n] == Val::Active(1, 0);
            // The successor is created first: a crash may leave it beside
            // the old session (its token never handed out), never the old
            // session retired without its successor.
            if old_done && !new_done {
                return Err(format!(
                    "old session retired without its successor {o} -> {n}: {:?} / {:?}",
                    found[o], found[n]
                ));
            }
        }
        let present = found.values().filter(|v| **v != Val::Absent).count();
        if store.len() != present {
            return Err(format!(
                "{} records in the store, {present} announced",
                store.len()
            ));
        }
        let active = found
            .values()
            .filter(|v| matches!(v, Val::Active(..)))
            .count() as u64;
        let counts = store.counts(T).await.map_err(|e| e.to_string())?;
        if counts.active != active {
            return Err(format!("{} active, expected {active}", counts.active));
        }
        for (sid, got) in found {
            if let Some(e) = self.sessions.get_mut(&sid) {
                e.acked = got;
                e.pending = None;
            }
        }
        self.sessions.retain(|_, e| e.acked != Val::Absent);
        self.upgrades.clear();
        Ok(())
    }
}

fn spawn_and_kill(exe: &Path, dir: &Path, base: i64, delay: Duration) -> Result<String, String> {
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(BASE_ENV, base.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    std::thread::sleep(delay);
    let exited_early = child.try_wait().map_err(|e| e.to_string())?;
    child.kill().map_err(|e| e.to_string())?; // SIGKILL
    child.wait().map_err(|e| e.to_string())?;
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    if let Some(status) = exited_early {
        return Err(format!("child exited by itself ({status}): {out}"));
    }
    Ok(out)
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cycles: u32 = std::env::var("SESSIONKIT_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rt = rt();
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut total_acked = 0u64;
    let mut checks = 0u32;
    // Run a private copy of this binary: a build in the same target
    // directory (another crate's tests, say) may replace the original
    // while the test runs.
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("crash-child");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let mut dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    for cycle in 0..cycles {
        if cycle % 25 == 0 && cycle > 0 {
            // A fresh directory now and then keeps every open quick.
            dir = tempfile::tempdir().unwrap();
            model = Model::default();
        }
        // Mostly while writing; one time in four early, while the child
        // is still starting, opening, creating or repairing the file.
        let delay = if rng.random_range(0..4) == 0 {
            Duration::from_millis(rng.random_range(0..15))
        } else {
            Duration::from_millis(rng.random_range(5..120))
        };
        let base = i64::from(cycle) * 10_000_000;
        let out = spawn_and_kill(&exe, dir.path(), base, delay).unwrap();
        model
            .feed(&out)
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        let last_in_dir = cycle % 25 == 24 || cycle + 1 == cycles;
        if cycle % 5 == 2 && !last_in_dir {
            continue;
        }
        rt.block_on(async {
            let store = RedbStore::open(dir.path())
                .unwrap_or_else(|e| panic!("cycle {cycle}: reopen: {e}"));
            model
                .check(&store)
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            store.flush_and_close().unwrap();
        });
        checks += 1;
        total_acked += std::mem::take(&mut model.acked_ops);
    }
    println!(
        "crash test: {cycles} kill -9 cycles, {checks} reopen checks, {total_acked} acknowledged operations verified, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        total_acked > u64::from(cycles),
        "the children did almost nothing"
    );
}
