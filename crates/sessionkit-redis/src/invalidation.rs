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

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::near_cache_channel::{
    AckBook, ChannelCounters, ChannelStats, DEAD_AFTER, HEARTBEAT, Message, NodeId, hex,
    new_node_id,
};
use tokio::sync::oneshot;

/// One node's end of the channel.
pub(crate) struct Bus {
    node: NodeId,
    inv_channel: String,
    ack_channel: String,
    ack_prefix: String,
    pub(crate) cache: Arc<NearCache>,
    con: ConnectionManager,
    book: AckBook,
    ack_timeout: Duration,
    counters: ChannelCounters,
}

/// Aborts the subscriber task when the last store clone is dropped.
pub(crate) struct Subscriber(tokio::task::AbortHandle);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        let node = new_node_id();
        let bus = Arc::new(Bus {
            node,
            inv_channel: format!("{prefix}:inv"),
            ack_channel: format!("{prefix}:ack:{}", hex(&node)),
            ack_prefix: format!("{prefix}:ack:"),
            cache,
            con,
            book: AckBook::default(),
            ack_timeout,
            counters: ChannelCounters::default(),
        });
        let task = tokio::spawn(subscribe_forever(client, Arc::clone(&bus)));
        (bus, Subscriber(task.abort_handle()))
    }

    /// Counters for metrics.
    pub(crate) fn stats(&self) -> ChannelStats {
        self.counters.stats()
    }

    /// Applies `inv` here, publishes it and waits (bounded) until every
    /// subscribed node applied it. Never fails: the write it follows is
    /// done; a publish or an ack that does not happen is counted and
    /// logged, and other nodes' entries still end with their TTL.
    pub(crate) async fn announce(&self, inv: Invalidation) {
        self.cache.invalidate(&inv);
        let (tx, rx) = oneshot::channel();
        let seq = self.book.open(move || {
            let _ = tx.send(());
        });
        let msg = Message::Invalidate {
            origin: self.node,
            seq,
            inv,
        }
        .encode();
        let mut con = self.con.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.inv_channel).arg(msg);
        let reached =
            tokio::time::timeout(self.ack_timeout, cmd.query_async::<u64>(&mut con)).await;
        match reached {
            Ok(Ok(n)) => {
                ChannelCounters::bump(&self.counters.published);
                self.book.expect(seq, n);
                if tokio::time::timeout(self.ack_timeout, rx).await.is_err() {
                    ChannelCounters::bump(&self.counters.ack_timeouts);
                    tracing::warn!(
                        subscribers = n,
                        "near-cache invalidation not acknowledged by every node in time"
                    );
                }
            }
            Ok(Err(_)) | Err(_) => {
                ChannelCounters::bump(&self.counters.publish_failures);
                tracing::warn!("near-cache invalidation could not be published");
            }
        }
        self.book.close(seq);
    }

    /// Handles one message of the subscription.
    fn receive(self: &Arc<Self>, payload: &[u8], heard: &mut Instant) {
        match Message::decode(payload) {
            Some(Message::Invalidate { origin, seq, inv }) => {
                self.cache.invalidate(&inv);
                let channel = format!("{}{}", self.ack_prefix, hex(&origin));
                let ack = Message::Ack { seq }.encode();
                let mut con = self.con.clone();
                tokio::spawn(async move {
                    let mut cmd = redis::cmd("PUBLISH");
                    cmd.arg(channel).arg(ack);
                    let _ = cmd.query_async::<u64>(&mut con).await;
                });
            }
            Some(Message::Ack { seq }) => self.book.ack(seq),
            Some(Message::Beat) => *heard = Instant::now(),
            None if payload.first() == Some(&b'I') => {
                tracing::warn!("undecodable near-cache invalidation; cache emptied");
                self.cache.set_usable(true);
            }
            None => tracing::warn!("unknown message on the near-cache channel"),
        }
    }

    fn beat(&self) {
        let mut con = self.con.clone();
        let channel = self.ack_channel.clone();
        tokio::spawn(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(Message::Beat.encode());
            let _ = tokio::time::timeout(HEARTBEAT, cmd.query_async::<u64>(&mut con)).await;
        });
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
            ChannelCounters::bump(&bus.counters.subscriptions);
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
