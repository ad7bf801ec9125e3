//! A shard's record bytes: records laid back to back in fixed-size chunks,
//! addressed by a `u32`, with no per-record allocation or header.
//!
//! Chunks are 256 KiB and never move or grow, so filling the store touches
//! only the memory the records take (a growing `Vec` would leave each old
//! copy behind in the allocator). A record larger than an eighth of a
//! chunk gets a chunk of its own. Freed and shrunk records leave garbage
//! that [`Arena::garbage`] counts; the owner compacts by copying the live
//! records into a fresh arena.

const CHUNK_BITS: u32 = 18;
/// Bytes in a regular chunk.
const CHUNK_SIZE: usize = 1 << CHUNK_BITS;
/// Records at least this long get a chunk of their own.
const BIG: usize = CHUNK_SIZE / 8;
/// Most chunks an arena can address (the rest of a `u32`).
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);

/// See the module docs.
#[derive(Default)]
pub(super) struct Arena {
    chunks: Vec<Box<[u8]>>,
    /// The regular chunk being filled, and how much of it is used.
    open: Option<(usize, usize)>,
    /// Bytes held by records that are gone or moved.
    garbage: usize,
    /// Bytes handed out (live and garbage).
    used: usize,
}

fn split(addr: u32) -> (usize, usize) {
    (
        (addr >> CHUNK_BITS) as usize,
        (addr & ((1 << CHUNK_BITS) - 1)) as usize,
    )
}

impl Arena {
    /// Bytes handed out, live or garbage.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Bytes no record uses any more.
    pub(super) fn garbage(&self) -> usize {
        self.garbage
    }

    /// Notes that `n` bytes of a record are no longer used.
    pub(super) fn release(&mut self, n: usize) {
        self.garbage += n;
    }

    /// `len` bytes at `addr`.
    pub(super) fn get(&self, addr: u32, len: usize) -> Option<&[u8]> {
        let (c, off) = split(addr);
        self.chunks.get(c)?.get(off..off.checked_add(len)?)
    }

    /// `len` bytes at `addr`, writable.
    pub(super) fn get_mut(&mut self, addr: u32, len: usize) -> Option<&mut [u8]> {
        let (c, off) = split(addr);
        self.chunks.get_mut(c)?.get_mut(off..off.checked_add(len)?)
    }

    /// Room for a record of `len` bytes; `None` when the arena's address
    /// space is used up.
    pub(super) fn alloc(&mut self, len: usize) -> Option<u32> {
        if len >= BIG {
            let c = self.push_chunk(len)?;
            self.used += len;
            return u32::try_from(c << CHUNK_BITS).ok();
        }
        let (c, fill) = match self.open {
            Some((c, fill)) if fill + len <= CHUNK_SIZE => (c, fill),
            open => {
                // The unused tail of the old chunk is garbage from now on.
                if let Some((_, fill)) = open {
                    self.garbage += CHUNK_SIZE - fill;
                    self.used += CHUNK_SIZE - fill;
                }
                (self.push_chunk(CHUNK_SIZE)?, 0)
            }
        };
        self.open = Some((c, fill + len));
        self.used += len;
        u32::try_from((c << CHUNK_BITS) | fill).ok()
    }

    fn push_chunk(&mut self, len: usize) -> Option<usize> {
        if self.chunks.len() >= MAX_CHUNKS {
            return None;
        }
        // Zeroed pages from the OS are only backed once written.
        self.chunks.push(vec![0u8; len].into_boxed_slice());
        Some(self.chunks.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_never_straddle_chunks_and_big_ones_get_their_own() {
        let mut a = Arena::default();
        let first = a.alloc(100).unwrap();
        assert_eq!(first, 0);
        // Fill the chunk up to 50 bytes from its end.
        let filler = CHUNK_SIZE - 100 - 50;
        let mut left = filler;
        while left > 0 {
            let n = left.min(BIG - 1);
            a.alloc(n).unwrap();
            left -= n;
        }
        // 100 bytes do not fit in the 50 left: a new chunk, tail is garbage.
        let next = a.alloc(100).unwrap();
        assert_eq!(split(next), (1, 0));
        assert_eq!(a.garbage(), 50);
        let big = a.alloc(BIG).unwrap();
        assert_eq!(split(big), (2, 0));
        assert_eq!(a.get(big, BIG).map(<[u8]>::len), Some(BIG));
        // Small records continue in the open chunk, not after the big one.
        assert_eq!(split(a.alloc(8).unwrap()), (1, 100));
        a.get_mut(next, 3).unwrap().copy_from_slice(b"abc");
        assert_eq!(a.get(next, 3), Some(&b"abc"[..]));
        assert!(a.get(next + 1, CHUNK_SIZE).is_none());
    }
}
