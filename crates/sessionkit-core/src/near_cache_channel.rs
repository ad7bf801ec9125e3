//! What every transport of a near-cache's invalidation channel shares
//! (Redis pub/sub, PostgreSQL `LISTEN/NOTIFY`): the messages nodes send
//! each other, the book of invalidations still waiting for
//! acknowledgements, and the channel's counters.
//!
//! The protocol, whatever carries it: a node that changed a session
//! applies the [`Invalidation`] to its own cache, broadcasts a
//! [`Message::Invalidate`] to every node (itself included), learns from the
//! transport how many nodes listen, and waits — bounded — until that many
//! [`Message::Ack`]s came back on its own channel. Each node sends itself a
//! [`Message::Beat`] every second and serves from its cache only while the
//! beats come back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::ids::{SessionId, Subject, TenantId};
use crate::near_cache::Invalidation;

/// How often a node checks its subscription with a heartbeat.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);
/// A subscription whose heartbeat is not back within this is dead.
pub const DEAD_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// A node's identity on the channel: random, only unique among live nodes.
pub type NodeId = [u8; 16];

const INV: u8 = b'I';
const ACK: u8 = b'A';
const BEAT: u8 = b'H';
const SESSION: u8 = b's';
const SUBJECT: u8 = b'u';

/// One message of the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Sent to every node: forget `inv`, then acknowledge `seq` to `origin`.
    Invalidate {
        /// The node that changed the session.
        origin: NodeId,
        /// Its number for this invalidation.
        seq: u64,
        /// What changed.
        inv: Invalidation,
    },
    /// Sent to the origin's own channel: invalidation `seq` was applied.
    Ack {
        /// The origin's number for the invalidation.
        seq: u64,
    },
    /// Sent by a node to its own channel: the subscription still works.
    Beat,
}

impl Message {
    /// The message as bytes (a transport that carries only text encodes
    /// them further, e.g. as hex).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Message::Invalidate { origin, seq, inv } => {
                out.push(INV);
                out.extend_from_slice(origin);
                out.extend_from_slice(&seq.to_be_bytes());
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
            Message::Ack { seq } => {
                out.push(ACK);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            Message::Beat => out.push(BEAT),
        }
        out
    }

    /// A message from bytes; `None` for anything malformed.
    #[must_use]
    pub fn decode(b: &[u8]) -> Option<Message> {
        match b.split_first()? {
            (&INV, rest) if rest.len() >= 24 => {
                let (origin, rest) = rest.split_at(16);
                let (seq, rest) = rest.split_at(8);
                Some(Message::Invalidate {
                    origin: NodeId::try_from(origin).ok()?,
                    seq: u64::from_be_bytes(<[u8; 8]>::try_from(seq).ok()?),
                    inv: decode_invalidation(rest)?,
                })
            }
            (&ACK, seq) => Some(Message::Ack {
                seq: u64::from_be_bytes(<[u8; 8]>::try_from(seq).ok()?),
            }),
            (&BEAT, []) => Some(Message::Beat),
            _ => None,
        }
    }
}

fn decode_invalidation(b: &[u8]) -> Option<Invalidation> {
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

/// Counters of a channel, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Invalidations this node published.
    pub published: u64,
    /// Published invalidations not acknowledged by every node in time.
    pub ack_timeouts: u64,
    /// Invalidations that could not be published (store unreachable).
    pub publish_failures: u64,
    /// Times the subscription was (re)established.
    pub subscriptions: u64,
}

/// The live counters behind [`ChannelStats`], updated by the transport.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// See [`ChannelStats::published`].
    pub published: AtomicU64,
    /// See [`ChannelStats::ack_timeouts`].
    pub ack_timeouts: AtomicU64,
    /// See [`ChannelStats::publish_failures`].
    pub publish_failures: AtomicU64,
    /// See [`ChannelStats::subscriptions`].
    pub subscriptions: AtomicU64,
}

impl ChannelCounters {
    /// Adds one to `counter` (one of this struct's fields).
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot, for metrics.
    #[must_use]
    pub fn stats(&self) -> ChannelStats {
        ChannelStats {
            published: self.published.load(Ordering::Relaxed),
            ack_timeouts: self.ack_timeouts.load(Ordering::Relaxed),
            publish_failures: self.publish_failures.load(Ordering::Relaxed),
            subscriptions: self.subscriptions.load(Ordering::Relaxed),
        }
    }
}

struct Pending {
    needed: Option<u64>,
    got: u64,
    done: Option<Box<dyn FnOnce() + Send>>,
}

impl Pending {
    fn settle(&mut self) {
        if self.needed.is_some_and(|n| self.got >= n)
            && let Some(done) = self.done.take()
        {
            done();
        }
    }
}

/// The invalidations a node broadcast and the acknowledgements each still
/// waits for. Runtime-free: the transport passes a `done` callback (e.g.
/// one that completes a oneshot channel it awaits with a timeout).
#[derive(Default)]
pub struct AckBook {
    seq: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl std::fmt::Debug for AckBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckBook")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl AckBook {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens an entry for a new invalidation; `done` runs once every node
    /// counted by [`AckBook::expect`] acknowledged it. Returns its number.
    pub fn open(&self, done: impl FnOnce() + Send + 'static) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.lock().insert(
            seq,
            Pending {
                needed: None,
                got: 0,
                done: Some(Box::new(done)),
            },
        );
        seq
    }

    /// How many acknowledgements `seq` needs (the transport's count of
    /// listening nodes, the sender included).
    pub fn expect(&self, seq: u64, nodes: u64) {
        if let Some(p) = self.lock().get_mut(&seq) {
            p.needed = Some(nodes);
            p.settle();
        }
    }

    /// One node acknowledged `seq` (unknown numbers are ignored: late acks
    /// of closed entries).
    pub fn ack(&self, seq: u64) {
        if let Some(p) = self.lock().get_mut(&seq) {
            p.got += 1;
            p.settle();
        }
    }

    /// Forgets `seq` (after its wait ended, however it ended).
    pub fn close(&self, seq: u64) {
        self.lock().remove(&seq);
    }
}

/// Lower-case hex of `b` (channel names, text payloads).
#[must_use]
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

/// Bytes from lower- or upper-case hex; `None` if it is not hex.
#[must_use]
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// A fresh node id: random, with a clock-based fallback that keeps the
/// store usable if the CSPRNG is not (a node id only has to differ between
/// live nodes).
#[must_use]
pub fn new_node_id() -> NodeId {
    let mut node = [0u8; 16];
    if getrandom::fill(&mut node).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        node = t.to_le_bytes();
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let msgs = [
            Message::Invalidate {
                origin: [7; 16],
                seq: 42,
                inv: Invalidation::Session(SessionId::generate()),
            },
            Message::Invalidate {
                origin: [1; 16],
                seq: u64::MAX,
                inv: Invalidation::Subject(
                    TenantId::new("acme").unwrap(),
                    Subject::new("ann@example.com").unwrap(),
                ),
            },
            Message::Ack { seq: 9 },
            Message::Beat,
        ];
        for m in msgs {
            let b = m.encode();
            assert_eq!(Message::decode(&b), Some(m.clone()));
            assert_eq!(unhex(&hex(&b)).as_deref(), Some(&b[..]));
            // Every strict prefix is refused, never misread.
            for n in 0..b.len() {
                if let Some(d) = Message::decode(&b[..n]) {
                    assert_ne!(d, m);
                }
            }
        }
        assert_eq!(Message::decode(b""), None);
        assert_eq!(Message::decode(b"Hx"), None);
        assert_eq!(Message::decode(b"A1234567"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn the_book_settles_when_every_node_acked() {
        let book = AckBook::default();
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let seq = book.open(move || d.store(true, Ordering::SeqCst));
        // Acks may arrive before the count is known.
        book.ack(seq);
        assert!(!done.load(Ordering::SeqCst));
        book.expect(seq, 2);
        assert!(!done.load(Ordering::SeqCst));
        book.ack(seq + 100);
        book.ack(seq);
        assert!(done.load(Ordering::SeqCst));
        book.close(seq);
        book.ack(seq);
        assert_eq!(book.lock().len(), 0);
    }
}
