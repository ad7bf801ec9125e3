//! The near-cache's invalidation channel over PostgreSQL `LISTEN/NOTIFY`.
//!
//! Every node keeps one connection outside the pool that `LISTEN`s on the
//! schema's channel `sk_inv_<h>` and on its own `sk_ack_<h>_<node>` (`<h>`:
//! a hash of the schema name, as channels are per database), and only then
//! names itself `sessionkit-nc-<h>` (its `application_name`). A node that
//! changes a session applies the invalidation to its own cache, then sends
//! one statement on a pooled connection that both `NOTIFY`s every node and
//! counts the listening connections of the schema in `pg_stat_activity`
//! (itself included), and waits, bounded by the ack timeout, until that
//! many nodes answered on its ack channel that they applied it. Only then
//! does the write return: a revoke on one node is refused by every other
//! node at its very next request.
//!
//! A node serves from its cache only while its listening connection is up
//! and its own heartbeat (a `NOTIFY` on its ack channel every second) comes
//! back within three seconds; a reconnect empties the cache before it
//! serves again. PostgreSQL drops the notifications of a connection that
//! is gone, so a node that missed some always knows it did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sessionkit_core::near_cache::{Invalidation, NearCache};
use sessionkit_core::near_cache_channel::{
    AckBook, ChannelCounters, ChannelStats, DEAD_AFTER, HEARTBEAT, Message, NodeId, hex,
    new_node_id, unhex,
};
use tokio::sync::oneshot;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement};

use crate::PostgresStore;

/// Notifies every node and counts the listening ones, in one statement:
/// `$1` channel, `$2` payload, `$3` the listeners' `application_name`.
pub(crate) const PUBLISH: &str = "SELECT pg_notify($1, $2), \
     (SELECT count(*) FROM pg_stat_activity \
       WHERE application_name = $3 AND datname = current_database())";

/// The names a schema's channel uses.
struct Names {
    inv: String,
    ack_prefix: String,
    app: String,
}

impl Names {
    fn of(schema: &str) -> Names {
        // FNV-1a: channel names are at most 63 bytes, schema names too.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in schema.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let h = hex(&h.to_be_bytes());
        Names {
            inv: format!("sk_inv_{h}"),
            ack_prefix: format!("sk_ack_{h}_"),
            app: format!("sessionkit-nc-{h}"),
        }
    }
}

/// One node's end of the channel.
pub(crate) struct Bus {
    node: NodeId,
    names: Names,
    ack_channel: String,
    pub(crate) cache: Arc<NearCache>,
    book: AckBook,
    ack_timeout: Duration,
    counters: ChannelCounters,
}

/// Aborts the listener task when the last store clone is dropped.
pub(crate) struct Listener(tokio::task::AbortHandle);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Bus {
    /// A bus for `schema`, and its listener task (running, reconnecting
    /// with `cfg`, until the returned guard is dropped).
    pub(crate) fn start(
        cfg: tokio_postgres::Config,
        schema: &str,
        cache: Arc<NearCache>,
        ack_timeout: Duration,
    ) -> (Arc<Bus>, Listener) {
        let node = new_node_id();
        let names = Names::of(schema);
        let bus = Arc::new(Bus {
            node,
            ack_channel: format!("{}{}", names.ack_prefix, hex(&node)),
            names,
            cache,
            book: AckBook::default(),
            ack_timeout,
            counters: ChannelCounters::default(),
        });
        let task = tokio::spawn(listen_forever(cfg, Arc::clone(&bus)));
        (bus, Listener(task.abort_handle()))
    }

    /// The listening connections' `application_name`.
    pub(crate) fn application_name(&self) -> &str {
        &self.names.app
    }

    /// Counters for metrics.
    pub(crate) fn stats(&self) -> ChannelStats {
        self.counters.stats()
    }

    /// Applies `inv` here, notifies every node through `store`'s pool and
    /// waits (bounded) until every listening node applied it. Never fails:
    /// the write it follows is done; a notify or an ack that does not
    /// happen is counted and logged, and other nodes' entries still end
    /// with their TTL.
    pub(crate) async fn announce(&self, store: &PostgresStore, inv: Invalidation) {
        self.cache.invalidate(&inv);
        let (tx, rx) = oneshot::channel();
        let seq = self.book.open(move || {
            let _ = tx.send(());
        });
        let payload = hex(&Message::Invalidate {
            origin: self.node,
            seq,
            inv,
        }
        .encode());
        let sent = tokio::time::timeout(
            self.ack_timeout,
            store.query(PUBLISH, &[&self.names.inv, &payload, &self.names.app], None),
        )
        .await;
        let listeners = match sent {
            Ok(Ok(rows)) => rows.first().and_then(|r| r.try_get::<_, i64>(1).ok()),
            Ok(Err(_)) | Err(_) => None,
        };
        match listeners {
            Some(n) => {
                ChannelCounters::bump(&self.counters.published);
                self.book.expect(seq, u64::try_from(n).unwrap_or(0));
                if tokio::time::timeout(self.ack_timeout, rx).await.is_err() {
                    ChannelCounters::bump(&self.counters.ack_timeouts);
                    tracing::warn!(
                        listeners = n,
                        "near-cache invalidation not acknowledged by every node in time"
                    );
                }
            }
            None => {
                ChannelCounters::bump(&self.counters.publish_failures);
                tracing::warn!("near-cache invalidation could not be published");
            }
        }
        self.book.close(seq);
    }

    /// Handles one notification; an ack to send back, if any.
    fn receive(&self, payload: &str, heard: &mut Instant) -> Option<(String, String)> {
        match unhex(payload).and_then(|b| Message::decode(&b)) {
            Some(Message::Invalidate { origin, seq, inv }) => {
                self.cache.invalidate(&inv);
                let to = format!("{}{}", self.names.ack_prefix, hex(&origin));
                Some((to, hex(&Message::Ack { seq }.encode())))
            }
            Some(Message::Ack { seq }) => {
                self.book.ack(seq);
                None
            }
            Some(Message::Beat) => {
                *heard = Instant::now();
                None
            }
            None => {
                // Perhaps an invalidation we cannot read: forget everything.
                tracing::warn!("undecodable near-cache notification; cache emptied");
                self.cache.set_usable(true);
                None
            }
        }
    }
}

/// Sends `payload` on `channel` from the listening connection, without
/// waiting (acks and heartbeats must not hold up the listener).
fn notify(client: &Arc<Client>, st: &Statement, channel: String, payload: String) {
    let client = Arc::clone(client);
    let st = st.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(HEARTBEAT, client.query(&st, &[&channel, &payload])).await;
    });
}

/// Keeps the listening connection up for as long as the store lives:
/// connect, `LISTEN`, serve from the cache while the heartbeat comes back,
/// and on any failure stop serving and start over.
async fn listen_forever(cfg: tokio_postgres::Config, bus: Arc<Bus>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Ok((client, mut connection)) = cfg.connect(NoTls).await {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            let client = Arc::new(client);
            // The connection must be polled for the setup to progress.
            let setup = async {
                client
                    .batch_execute(&format!(
                        "LISTEN {}; LISTEN {}; SET application_name = '{}'",
                        bus.names.inv, bus.ack_channel, bus.names.app
                    ))
                    .await?;
                client.prepare("SELECT pg_notify($1, $2)").await
            };
            tokio::pin!(setup);
            let st = loop {
                tokio::select! {
                    r = &mut setup => break r.ok(),
                    m = messages.next() => if !matches!(m, Some(Ok(_))) { break None },
                }
            };
            if let Some(st) = st {
                backoff = Duration::from_millis(50);
                ChannelCounters::bump(&bus.counters.subscriptions);
                bus.cache.set_usable(true);
                let mut heard = Instant::now();
                let mut tick = tokio::time::interval(HEARTBEAT);
                loop {
                    tokio::select! {
                        m = messages.next() => match m {
                            Some(Ok(AsyncMessage::Notification(n))) => {
                                if let Some((to, ack)) = bus.receive(n.payload(), &mut heard) {
                                    notify(&client, &st, to, ack);
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        },
                        _ = tick.tick() => {
                            if heard.elapsed() > DEAD_AFTER {
                                break;
                            }
                            notify(&client, &st, bus.ack_channel.clone(), hex(&Message::Beat.encode()));
                        }
                    }
                }
                bus.cache.set_usable(false);
                tracing::warn!(
                    "near-cache listening connection lost; serving from PostgreSQL until it is back"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_postgres_identifiers() {
        let long = "s".repeat(63);
        let n = Names::of(&long);
        let ack = format!("{}{}", n.ack_prefix, hex(&[0xff; 16]));
        for name in [&n.inv, &ack, &n.app] {
            assert!(name.len() <= 63, "{name}");
        }
        assert_ne!(Names::of("a").inv, Names::of("b").inv);
    }
}
