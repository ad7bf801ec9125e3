//! [`StoreAdmin`]: operator figures, read from every shard at once.

use redis::Value;
use sessionkit_core::ids::{Subject, TenantId};
use sessionkit_core::store::{Counts, StoreAdmin, StoreResult};
use sessionkit_core::time::Millis;

use crate::reply::{array, corrupt, int, subject_of};
use crate::{RedisStore, args, ms};

impl StoreAdmin for RedisStore {
    async fn list_subjects(
        &self,
        tenant: TenantId,
        now: Millis,
        after: Option<&Subject>,
        limit: usize,
    ) -> StoreResult<Vec<(Subject, u64)>> {
        let replies = self
            .on_every_shard(&self.scripts.list_subjects, args![tenant.as_str(), ms(now)])
            .await?;
        let bad = || corrupt("subject index", None);
        let mut out = Vec::new();
        for v in &replies {
            for it in array(v).ok_or_else(bad)? {
                let [s, n] = array(it).ok_or_else(bad)? else {
                    return Err(bad());
                };
                let s = subject_of(s, None)?.ok_or_else(bad)?;
                let n = u64::try_from(int(n).ok_or_else(bad)?).map_err(|_| bad())?;
                if after.is_none_or(|a| s.as_str().as_bytes() > a.as_str().as_bytes()) {
                    out.push((s, n));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
        out.truncate(limit);
        Ok(out)
    }

    /// Standalone: exact, one snapshot (the counters change in the same
    /// script as the records). Cluster: the sum of every shard's counters,
    /// each exact, read one after the other (`approximate`; exact when
    /// quiescent).
    async fn counts(&self, tenant: TenantId) -> StoreResult<Counts> {
        let bad = || corrupt("counters", None);
        let mut sum = [0u64; 3];
        let replies = self
            .on_every_shard(&self.scripts.counts, args![tenant.as_str()])
            .await?;
        for v in &replies {
            let a = array(v).ok_or_else(bad)?;
            for (i, total) in sum.iter_mut().enumerate() {
                let n = match a.get(i) {
                    Some(Value::Nil) => 0,
                    Some(x) => u64::try_from(int(x).ok_or_else(bad)?).map_err(|_| bad())?,
                    None => return Err(bad()),
                };
                *total = total.saturating_add(n);
            }
        }
        Ok(Counts {
            active: sum[0],
            anonymous: sum[1],
            subjects: sum[2],
            approximate: self.layout.pointers(),
        })
    }
}
