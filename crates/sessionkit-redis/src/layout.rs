//! Where a store's keys live: one *shard* (six keys sharing a cluster
//! slot) per group of sessions, and, on Cluster, pointers from a token hash
//! or an id to the shard that holds the record.
//!
//! A standalone store has one shard and no pointers: every script sees
//! every key, so validation and create are one round trip. A Cluster store
//! has [`RedisOptions::shards`](crate::RedisOptions::shards) shards, each
//! under its own hash tag, spread evenly over the 16,384 slots. A subject's
//! sessions all live in the shard its `(tenant, subject)` hashes to, so its
//! cap, `list_subject` and `revoke_subject` stay one script; a tenant's
//! anonymous sessions live in the shard its tenant hashes to, so the
//! anonymous cap stays exact.

use sessionkit_core::ids::{SessionId, Subject, TenantId};
use sessionkit_core::token::TokenHash;

use crate::codec::{hash_key, id_key};

/// The number of Redis Cluster slots.
const SLOTS: u32 = 16_384;

/// The six keys of one shard, in the order the scripts take them:
/// records, tokens, purge, floor, subject index, counters.
pub(crate) type ShardKeys = [String; 6];

/// A store's keys.
#[derive(Debug)]
pub(crate) struct Layout {
    prefix: String,
    shards: Box<[ShardKeys]>,
    /// On Cluster: token and id pointers to a shard.
    pointers: bool,
}

/// The slot Redis Cluster gives `key` (CRC16/XMODEM of its hash tag).
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tag = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tag) % 16_384
}

/// FNV-1a, 64 bits: a stable hash for choosing a shard (the same in every
/// process and every version).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Layout {
    /// A standalone store: one shard, keys `<prefix>:r`, `:t`, `:p`, `:f`,
    /// `:sa`, `:c`.
    pub(crate) fn standalone(prefix: &str) -> Self {
        let k = |s: &str| format!("{prefix}:{s}");
        Layout {
            prefix: prefix.to_owned(),
            shards: vec![[k("r"), k("t"), k("p"), k("f"), k("sa"), k("c")]].into(),
            pointers: false,
        }
    }

    /// A Cluster store with `n` shards. Shard `i`'s keys are
    /// `<prefix>:{<tag>}:r` …, where the tag is the first `s<i>.<j>` whose
    /// slot falls in the `i`-th of `n` equal slot ranges, so the shards
    /// spread evenly over the masters whatever their number.
    pub(crate) fn cluster(prefix: &str, n: u16) -> Self {
        let n = u32::from(n.max(1));
        let shards = (0..n)
            .map(|i| {
                let (lo, hi) = (i * SLOTS / n, (i + 1) * SLOTS / n);
                let tag = (0u32..)
                    .map(|j| format!("s{i}.{j}"))
                    .find(|t| (lo..hi).contains(&u32::from(slot(t.as_bytes()))))
                    .unwrap_or_else(|| format!("s{i}"));
                let k = |s: &str| format!("{prefix}:{{{tag}}}:{s}");
                [k("r"), k("t"), k("p"), k("f"), k("sa"), k("c")]
            })
            .collect();
        Layout {
            prefix: prefix.to_owned(),
            shards,
            pointers: true,
        }
    }

    /// Whether records are found through pointers (Cluster).
    pub(crate) fn pointers(&self) -> bool {
        self.pointers
    }

    /// Every shard.
    pub(crate) fn shards(&self) -> &[ShardKeys] {
        &self.shards
    }

    /// Shard `i`'s keys.
    pub(crate) fn shard(&self, i: usize) -> Option<&ShardKeys> {
        self.shards.get(i)
    }

    fn pick(&self, h: u64) -> usize {
        // The shard count fits in u16, so the remainder fits in usize.
        usize::try_from(h % self.shards.len() as u64).unwrap_or(0)
    }

    /// The shard of a subject's sessions.
    pub(crate) fn subject_shard(&self, tenant: TenantId, subject: &Subject) -> usize {
        self.pick(fnv(&[
            tenant.as_str().as_bytes(),
            b"s",
            subject.as_str().as_bytes(),
        ]))
    }

    /// The shard of a tenant's anonymous sessions.
    pub(crate) fn anonymous_shard(&self, tenant: TenantId) -> usize {
        self.pick(fnv(&[tenant.as_str().as_bytes(), b"a"]))
    }

    /// The shard a new record goes to.
    pub(crate) fn home(&self, tenant: TenantId, subject: Option<&Subject>) -> usize {
        match subject {
            Some(s) => self.subject_shard(tenant, s),
            None => self.anonymous_shard(tenant),
        }
    }

    /// The pointer key of a token hash (Cluster).
    pub(crate) fn token_pointer(&self, h: &TokenHash) -> String {
        format!("{}:t:{}", self.prefix, hash_key(h))
    }

    /// The pointer key of an id (Cluster).
    pub(crate) fn id_pointer(&self, id: SessionId) -> String {
        format!("{}:i:{}", self.prefix, id_key(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 12_739);
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn shards_spread_evenly_and_keys_share_their_slot() {
        let l = Layout::cluster("p", 64);
        for (i, keys) in l.shards().iter().enumerate() {
            let s = u32::from(slot(keys[0].as_bytes()));
            let (lo, hi) = (i as u32 * SLOTS / 64, (i as u32 + 1) * SLOTS / 64);
            assert!((lo..hi).contains(&s), "shard {i} in slot {s}");
            assert!(keys.iter().all(|k| u32::from(slot(k.as_bytes())) == s));
        }
    }

    #[test]
    fn a_subject_always_maps_to_one_shard() {
        let l = Layout::cluster("p", 16);
        let t = TenantId::new("t").expect("tenant");
        let s = Subject::new("user {1}*").expect("subject");
        assert_eq!(l.subject_shard(t, &s), l.subject_shard(t, &s));
        assert_eq!(Layout::standalone("p").subject_shard(t, &s), 0);
    }
}
