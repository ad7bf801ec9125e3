//! The near-cache's invalidation channel over Redis pub/sub.
//!
//! Every node subscribes to `<prefix>:inv` and to its own
//! `<prefix>:ack:<node>`. A node that changes a session applies the
//! invalidation to its own cache, `PUBLISH`es it on `<prefix>:inv` (Redis
//! answers with the number of subscribers it reached, itself included) and
//! waits, bounded by the ack timeout, until that many nodes have answered
//! on its ack channel that they applied it. Only then does the write
//! return: a revoke on one node is seen by every other node at its very
//! next request.
//!
//! A node serves from its cache only while its subscription is up and its
//! own heartbeat (published every second on its ack channel) comes back
//! within three seconds; a reconnect empties the cache before it serves
//! again. So a node that misses invalidations (connection lost, Redis
//! restarted or failed over) stops using its cache instead of serving
//! stale records.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::{SessionId, Subject, TenantId};
use tokio::sync::oneshot;

/// How often a node checks its subscription with a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A subscription whose heartbeat is not back within this is dead.
const DEAD_AFTER: Duration = Duration::from_secs(3);

const INV: u8 = b'I';
const ACK: u8 = b'A';
const BEAT: u8 = b'H';
const SESSION: u8 = b's';
const SUBJECT: u8 = b'u';

struct Pending {
    needed: Option<u64>,
    got: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Pending {
    fn settle(&mut self) {
        if self.needed.is_some_and(|n| self.got >= n)
            && let Some(tx) = self.done.take()
        {
            let _ = tx.send(());
        }
    }
}

/// Counters of the channel, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Invalidations this node published.
    pub published: u64,
    /// Published invalidations not acknowledged by every node in time.
    pub ack_timeouts: u64,
    /// Invalidations that could not be published (Redis unreachable).
    pub publish_failures: u64,
    /// Times the subscription was (re)established.
    pub subscriptions: u64,
}

/// One node's end of the channel.
pub(crate) struct Bus {
    node: [u8; 16],
    inv_channel: String,
    ack_channel: String,
    ack_prefix: String,
    pub(crate) cache: Arc<NearCache>,
    con: ConnectionManager,
    seq: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    ack_timeout: Duration,
    published: AtomicU64,
    ack_timeouts: AtomicU64,
    publish_failures: AtomicU64,
    subscriptions: AtomicU64,
}

/// Aborts the subscriber task when the last store clone is dropped.
pub(crate) struct Subscriber(tokio::task::AbortHandle);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn hex(b: &[u8]) -> String {
    crate::codec::hex(b)
}

impl Bus {
    /// A bus for `prefix`, and its subscriber task (running until the
    /// returned guard is dropped).
    pub(crate) fn start(
        client: redis::Client,
        con: ConnectionManager,
        prefix: &str,
        cache: Arc<NearCache>,
        ack_timeout: Duration,
    ) -> (Arc<Bus>, Subscriber) {
        let mut node = [0u8; 16];
        // A node id only has to differ between live nodes; a clock-based
        // fallback keeps the store usable if the CSPRNG is not.
        if getrandom::fill(&mut node).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            node = t.to_le_bytes();
        }
        let bus = Arc::new(Bus {
            node,
            inv_channel: format!("{prefix}:inv"),
            ack_channel: format!("{prefix}:ack:{}", hex(&node)),
            ack_prefix: format!("{prefix}:ack:"),
            cache,
            con,
            seq: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            ack_timeout,
            published: AtomicU64::new(0),
            ack_timeouts: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
        });
        let task = tokio::spawn(subscribe_forever(client, Arc::clone(&bus)));
        (bus, Subscriber(task.abort_handle()))
    }

    /// Counters for metrics.
    pub(crate) fn stats(&self) -> ChannelStats {
        ChannelStats {
            published: self.published.load(Ordering::Relaxed),
            ack_timeouts: self.ack_timeouts.load(Ordering::Relaxed),
            publish_failures: self.publish_failures.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `inv` here, publishes it and waits (bounded) until every
    /// subscribed node applied it. Never fails: the write it follows is
    /// done; a publish or an ack that does not happen is counted and
    /// logged, and other nodes' entries still end with their TTL.
    pub(crate) async fn announce(&self, inv: Invalidation) {
        self.cache.invalidate(&inv);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending().insert(
            seq,
            Pending {
                needed: None,
                got: 0,
                done: Some(tx),
            },
        );
        let mut msg = Vec::with_capacity(64);
        msg.push(INV);
        msg.extend_from_slice(&self.node);
        msg.extend_from_slice(&seq.to_be_bytes());
        encode(&inv, &mut msg);
        let mut con = self.con.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.inv_channel).arg(msg);
        let reached =
            tokio::time::timeout(self.ack_timeout, cmd.query_async::<u64>(&mut con)).await;
        match reached {
            Ok(Ok(n)) => {
                self.published.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = self.pending().get_mut(&seq) {
                    p.needed = Some(n);
                    p.settle();
                }
                if tokio::time::timeout(self.ack_timeout, rx).await.is_err() {
                    self.ack_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        subscribers = n,
                        "near-cache invalidation not acknowledged by every node in time"
                    );
                }
            }
            Ok(Err(_)) | Err(_) => {
                self.publish_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("near-cache invalidation could not be published");
            }
        }
        self.pending().remove(&seq);
    }

    /// Handles one message of the subscription.
    fn receive(self: &Arc<Self>, payload: &[u8], heard: &mut Instant) {
        match payload.split_first() {
            Some((&INV, rest)) if rest.len() >= 24 => {
                let (origin, rest) = rest.split_at(16);
                let (seq, rest) = rest.split_at(8);
                let Some(inv) = decode(rest) else {
                    tracing::warn!("undecodable near-cache invalidation; cache emptied");
                    self.cache.set_usable(true);
                    return;
                };
                self.cache.invalidate(&inv);
                let mut ack = Vec::with_capacity(9);
                ack.push(ACK);
                ack.extend_from_slice(seq);
                let channel = format!("{}{}", self.ack_prefix, hex(origin));
                let mut con = self.con.clone();
                tokio::spawn(async move {
                    let mut cmd = redis::cmd("PUBLISH");
                    cmd.arg(channel).arg(ack);
                    let _ = cmd.query_async::<u64>(&mut con).await;
                });
            }
            Some((&ACK, rest)) => {
                let Ok(seq) = <[u8; 8]>::try_from(rest) else {
                    return;
                };
                if let Some(p) = self.pending().get_mut(&u64::from_be_bytes(seq)) {
                    p.got += 1;
                    p.settle();
                }
            }
            Some((&BEAT, _)) => *heard = Instant::now(),
            _ => tracing::warn!("unknown message on the near-cache channel"),
        }
    }

    fn beat(&self) {
        let mut con = self.con.clone();
        let channel = self.ack_channel.clone();
        tokio::spawn(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(&[BEAT][..]);
            let _ = tokio::time::timeout(HEARTBEAT, cmd.query_async::<u64>(&mut con)).await;
        });
    }
}

fn encode(inv: &Invalidation, out: &mut Vec<u8>) {
    match inv {
        Invalidation::Session(id) => {
            out.push(SESSION);
            out.extend_from_slice(id.as_bytes());
        }
        Invalidation::Subject(t, s) => {
            out.push(SUBJECT);
            // Tenants are at most 64 bytes of [a-z0-9_-].
            out.push(u8::try_from(t.as_str().len()).unwrap_or(u8::MAX));
            out.extend_from_slice(t.as_str().as_bytes());
            out.extend_from_slice(s.as_str().as_bytes());
        }
    }
}

fn decode(b: &[u8]) -> Option<Invalidation> {
    match b.split_first()? {
        (&SESSION, id) => Some(Invalidation::Session(SessionId::from_bytes(
            <[u8; 16]>::try_from(id).ok()?,
        ))),
        (&SUBJECT, rest) => {
            let (&n, rest) = rest.split_first()?;
            let n = usize::from(n);
            if rest.len() < n {
                return None;
            }
            let (t, s) = rest.split_at(n);
            let t = TenantId::new(std::str::from_utf8(t).ok()?).ok()?;
            let s = Subject::from_bytes(s).ok()?;
            Some(Invalidation::Subject(t, s))
        }
        _ => None,
    }
}

/// Keeps the subscription up for as long as the store lives: subscribe,
/// serve from the cache while the heartbeat comes back, and on any failure
/// stop serving and start over.
async fn subscribe_forever(client: redis::Client, bus: Arc<Bus>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Ok(mut ps) = client.get_async_pubsub().await
            && ps.subscribe(&bus.inv_channel).await.is_ok()
            && ps.subscribe(&bus.ack_channel).await.is_ok()
        {
            backoff = Duration::from_millis(50);
            bus.subscriptions.fetch_add(1, Ordering::Relaxed);
            bus.cache.set_usable(true);
            let mut heard = Instant::now();
            let mut stream = ps.into_on_message();
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    msg = stream.next() => match msg {
                        Some(m) => bus.receive(m.get_payload_bytes(), &mut heard),
                        None => break,
                    },
                    _ = tick.tick() => {
                        if heard.elapsed() > DEAD_AFTER {
                            break;
                        }
                        bus.beat();
                    }
                }
            }
            bus.cache.set_usable(false);
            tracing::warn!("near-cache channel lost; serving from Redis until it is back");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
