//! A shard's record bytes: records laid back to back in fixed-size chunks,
//! addressed by a `u32`, with no per-record allocation or header.
//!
//! - **Chunks** never move or grow, so filling the store touches only the
//!   memory the records take. Records are written into 256 KiB chunks,
//!   each an anonymous mapping of its own: pages are backed only when
//!   written and go back to the system when the chunk is freed.
//! - **Huge pages by promotion.** Every eight full small chunks (2 MiB)
//!   are *promoted*: their records are copied, packed,
//!   into one 2 MiB mapping marked for transparent huge pages
//!   (`MADV_HUGEPAGE`), and the small chunks are freed (the owner, which
//!   knows where each record is, does the copying: see
//!   [`Arena::take_promotion`]). A large store's records then cost one TLB
//!   entry per 2 MiB instead of per 4 KiB, so at 10M sessions a
//!   validation's record read does not wait for a page walk; and since a
//!   huge page is only ever made full, no shard holds a half-empty one.
//! - **Space** is handed out in 4-byte steps. A freed record's space goes on
//!   a free list of its size and is reused by the next record of that size
//!   (sessions of one app are mostly alike). A record larger than an eighth
//!   of a small chunk gets a chunk of its own, given back when it goes.
//! - **Garbage**: what cannot be reused yet is counted by
//!   [`Arena::garbage`]; the owner compacts by copying the live records
//!   into a fresh arena ([`Arena::packing`]).

/// Address bits for the offset in a chunk (a huge chunk's size).
const CHUNK_BITS: u32 = 21;
/// Bytes in a huge chunk.
const HUGE_CHUNK: usize = 1 << CHUNK_BITS;
/// Bytes in a small chunk.
const SMALL_CHUNK: usize = 1 << 18;
/// A compaction's copy ([`Arena::packing`]) fills huge chunks once it has
/// written this many bytes of small ones (promotion needs eight full small
/// chunks, which is the same 2 MiB).
#[cfg(not(test))]
const HUGE_AFTER: usize = 2 << 20;
/// Lower in unit tests, so that randomised ones reach it.
#[cfg(test)]
const HUGE_AFTER: usize = 1 << 20;
/// Small chunks promoted into one huge chunk.
const PROMOTE: usize = HUGE_CHUNK / SMALL_CHUNK;
/// Records needing at least this much get a chunk of their own.
const BIG: usize = SMALL_CHUNK / 8;
/// Most chunks an arena can address (the rest of a `u32`).
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// Granularity of the space handed out.
const STEP: usize = 4;

/// The space a record of `len` bytes takes.
pub(super) fn room(len: usize) -> usize {
    len.div_ceil(STEP) * STEP
}

/// A chunk's memory.
enum Chunk {
    /// From the allocator: a big record's own chunk.
    Heap(Box<[u8]>),
    /// A regular chunk: an anonymous mapping (huge pages advised for a
    /// huge chunk).
    Mapped(memmap2::MmapMut),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Heap(b) => b,
            Chunk::Mapped(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Chunk::Heap(b) => b,
            Chunk::Mapped(m) => m,
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }
}

/// See the module docs.
#[derive(Default)]
pub(super) struct Arena {
    chunks: Vec<Chunk>,
    /// Bytes in regular chunks (small and huge).
    regular: usize,
    /// The regular chunk being filled, and how much of it is used.
    open: Option<(usize, usize)>,
    /// Full small chunks, oldest first, not promoted yet.
    closed: Vec<usize>,
    /// Filling by copying a whole arena: past [`HUGE_AFTER`], new chunks
    /// are huge ones straight away.
    packing: bool,
    /// Numbers of freed chunks, to reuse.
    spare: Vec<usize>,
    /// Free space by size: `holes[n]` holds addresses of `n * STEP` bytes.
    holes: Vec<Vec<u32>>,
    /// Bytes in chunks not used by a live record.
    garbage: usize,
    /// Bytes in regular chunks handed out, and in big chunks.
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

    /// Bytes no live record uses.
    pub(super) fn garbage(&self) -> usize {
        self.garbage
    }

    /// Number of huge chunks (for tests and figures).
    #[cfg(test)]
    pub(super) fn huge_chunks(&self) -> usize {
        self.chunks.iter().filter(|c| c.len() == HUGE_CHUNK).count()
    }

    /// Whether a record of `len` bytes gets a chunk of its own.
    pub(super) fn is_big(len: usize) -> bool {
        room(len) >= BIG
    }

    /// Whether a record of `new` bytes fits in the space of one of `old`
    /// bytes (see [`Arena::shrink`]).
    pub(super) fn fits(old: usize, new: usize) -> bool {
        room(new) <= room(old)
    }

    /// A record of `old` bytes at `addr` now holds `new` (not more room):
    /// the space after it is free.
    pub(super) fn shrink(&mut self, addr: u32, old: usize, new: usize) {
        let (old, new) = (room(old), room(new));
        if old <= new {
            return;
        }
        if old >= BIG {
            // Inside a chunk of its own: reclaimed when the chunk is.
            self.garbage += old - new;
        } else if let Some(tail) = u32::try_from(new).ok().and_then(|n| addr.checked_add(n)) {
            self.free(tail, old - new);
        }
    }

    /// `len` bytes at `addr`.
    pub(super) fn get(&self, addr: u32, len: usize) -> Option<&[u8]> {
        let (c, off) = split(addr);
        self.chunks.get(c)?.bytes().get(off..off.checked_add(len)?)
    }

    /// The bytes from `addr` to the end of its chunk.
    pub(super) fn rest(&self, addr: u32) -> Option<&[u8]> {
        let (c, off) = split(addr);
        self.chunks.get(c)?.bytes().get(off..)
    }

    /// `len` bytes at `addr`, writable.
    pub(super) fn get_mut(&mut self, addr: u32, len: usize) -> Option<&mut [u8]> {
        let (c, off) = split(addr);
        self.chunks
            .get_mut(c)?
            .bytes_mut()
            .get_mut(off..off.checked_add(len)?)
    }

    /// Room for a record of `len` bytes; `None` when the arena's address
    /// space is used up.
    pub(super) fn alloc(&mut self, len: usize) -> Option<u32> {
        let need = room(len);
        if need >= BIG {
            let c = self.push_chunk(Chunk::Heap(vec![0u8; need].into_boxed_slice()))?;
            self.used += need;
            return u32::try_from(c << CHUNK_BITS).ok();
        }
        if let Some(addr) = self.holes.get_mut(need / STEP).and_then(Vec::pop) {
            self.garbage -= need;
            return Some(addr);
        }
        let room_in = |c: usize| self.chunks.get(c).map_or(0, Chunk::len);
        let (c, fill) = match self.open {
            Some((c, fill)) if fill + need <= room_in(c) => (c, fill),
            open => {
                // The unused tail of the old chunk is garbage from now on
                // (counted once: the chunk is closed even if no new one
                // can be made).
                if let Some((c, fill)) = open {
                    let len = room_in(c);
                    self.garbage += len - fill;
                    self.used += len - fill;
                    if len == SMALL_CHUNK {
                        self.closed.push(c);
                    }
                    self.open = None;
                }
                (self.push_regular()?, 0)
            }
        };
        self.open = Some((c, fill + need));
        self.used += need;
        u32::try_from((c << CHUNK_BITS) | fill).ok()
    }

    /// Gives back the space of a record of `len` bytes at `addr`.
    pub(super) fn free(&mut self, addr: u32, len: usize) {
        let need = room(len);
        if need >= BIG {
            let (c, _) = split(addr);
            if let Some(chunk) = self.chunks.get_mut(c) {
                // What an in-place shrink had counted as garbage goes too.
                self.garbage = self
                    .garbage
                    .saturating_sub(chunk.len().saturating_sub(need));
                self.used = self.used.saturating_sub(chunk.len());
                *chunk = Chunk::Heap(Box::default());
                self.spare.push(c);
            }
            return;
        }
        let class = need / STEP;
        if self.holes.len() <= class {
            self.holes.resize_with(class + 1, Vec::new);
        }
        self.holes[class].push(addr);
        self.garbage += need;
    }

    /// An empty arena to copy a whole one into (compaction): past
    /// [`HUGE_AFTER`] it fills huge chunks directly, so that the copy needs
    /// no more chunks than the original.
    pub(super) fn packing() -> Arena {
        Arena {
            packing: true,
            ..Arena::default()
        }
    }

    /// Ends [`Arena::packing`]: new chunks are small again.
    pub(super) fn stop_packing(&mut self) {
        self.packing = false;
    }

    fn huge_chunk() -> Option<Chunk> {
        let map = memmap2::MmapMut::map_anon(HUGE_CHUNK).ok()?;
        // A hint: without huge pages it is still a mapping.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Some(Chunk::Mapped(map))
    }

    /// Whether a new chunk can be numbered.
    fn has_room(&self) -> bool {
        !self.spare.is_empty() || self.chunks.len() < MAX_CHUNKS
    }

    /// A new small chunk to fill: a mapping of its own, so that its pages
    /// are only backed once written and go back to the system when it is
    /// promoted (a freed heap block would stay in the process).
    fn push_regular(&mut self) -> Option<usize> {
        if self.packing
            && self.regular >= HUGE_AFTER
            && let Some(chunk) = Arena::huge_chunk()
        {
            let c = self.push_chunk(chunk)?;
            self.regular += HUGE_CHUNK;
            return Some(c);
        }
        let chunk = match memmap2::MmapMut::map_anon(SMALL_CHUNK) {
            Ok(m) => Chunk::Mapped(m),
            Err(_) => Chunk::Heap(vec![0u8; SMALL_CHUNK].into_boxed_slice()),
        };
        let c = self.push_chunk(chunk)?;
        self.regular += SMALL_CHUNK;
        Some(c)
    }

    /// Eight full small chunks to promote, with the huge chunk to copy their records into. The owner copies
    /// every live record in them ([`Arena::chunk_of`], [`Arena::copy`]),
    /// packed from the start of the huge chunk, then calls
    /// [`Arena::retire`]. `None` if nothing is due (or no mapping can be
    /// made: the records stay where they are).
    pub(super) fn take_promotion(&mut self) -> Option<(Vec<usize>, usize)> {
        if self.closed.len() < PROMOTE || !self.has_room() {
            return None;
        }
        let huge = self.push_chunk(Arena::huge_chunk()?)?;
        Some((self.closed.drain(..PROMOTE).collect(), huge))
    }

    /// Address `off` bytes into chunk `c` (`None` past a chunk's end).
    pub(super) fn address(c: usize, off: usize) -> Option<u32> {
        if off >= 1 << CHUNK_BITS {
            return None;
        }
        u32::try_from((c << CHUNK_BITS) | off).ok()
    }

    /// The chunk an address is in.
    pub(super) fn chunk_of(addr: u32) -> usize {
        split(addr).0
    }

    /// Copies `len` bytes from `from` to `to` in another chunk.
    pub(super) fn copy(&mut self, from: u32, to: u32, len: usize) -> bool {
        let ((fc, fo), (tc, to)) = (split(from), split(to));
        if fc == tc || fc.max(tc) >= self.chunks.len() {
            return false;
        }
        let (Some(fe), Some(te)) = (fo.checked_add(len), to.checked_add(len)) else {
            return false;
        };
        let (src, dst) = if fc < tc {
            let (a, b) = self.chunks.split_at_mut(tc);
            (&a[fc], &mut b[0])
        } else {
            let (a, b) = self.chunks.split_at_mut(fc);
            (&b[0], &mut a[tc])
        };
        match (src.bytes().get(fo..fe), dst.bytes_mut().get_mut(to..te)) {
            (Some(s), Some(d)) => {
                d.copy_from_slice(s);
                true
            }
            _ => false,
        }
    }

    /// Frees promoted small chunks, every live record in them having been
    /// copied into the huge chunk, and forgets the free space that was in
    /// them.
    pub(super) fn retire(&mut self, small: &[usize]) {
        for &c in small {
            if let Some(chunk) = self.chunks.get_mut(c) {
                *chunk = Chunk::Heap(Box::default());
                self.spare.push(c);
            }
        }
        for list in &mut self.holes {
            list.retain(|a| !small.contains(&split(*a).0));
        }
        // Eight small chunks out, one huge in: the same bytes, and what was
        // free in the small ones is the huge one's unused end, still
        // counted as garbage until a compaction.
    }

    /// Places a new chunk, in the number of a freed one if there is one
    /// (no address points into a freed chunk).
    fn push_chunk(&mut self, chunk: Chunk) -> Option<usize> {
        if let Some(c) = self.spare.pop()
            && let Some(slot) = self.chunks.get_mut(c)
        {
            *slot = chunk;
            return Some(c);
        }
        if self.chunks.len() >= MAX_CHUNKS {
            return None;
        }
        self.chunks.push(chunk);
        Some(self.chunks.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_never_straddle_chunks_and_big_ones_get_their_own() {
        let mut a = Arena::default();
        // 98 bytes take 100: space comes in 4-byte steps.
        let first = a.alloc(98).unwrap();
        assert_eq!(first, 0);
        // Fill the chunk up to 48 bytes from its end.
        let mut left = SMALL_CHUNK - 100 - 48;
        while left > 0 {
            let n = left.min(BIG - STEP);
            a.alloc(n).unwrap();
            left -= n;
        }
        // 100 bytes do not fit in the 48 left: a new chunk, tail is garbage.
        let next = a.alloc(100).unwrap();
        assert_eq!(split(next), (1, 0));
        assert_eq!(a.garbage(), 48);
        let big = a.alloc(BIG).unwrap();
        assert_eq!(split(big), (2, 0));
        assert_eq!(a.get(big, BIG).map(<[u8]>::len), Some(BIG));
        // Small records continue in the open chunk, not after the big one.
        let small = a.alloc(5).unwrap();
        assert_eq!(split(small), (1, 100));
        // Freed space is reused by the next record of its size only.
        a.free(small, 5);
        assert_eq!(a.garbage(), 56);
        assert_eq!(split(a.alloc(9).unwrap()), (1, 108));
        assert_eq!(a.alloc(7), Some(small));
        assert_eq!(a.garbage(), 48);
        // A big record's chunk is given back with it.
        let used = a.used();
        a.free(big, BIG);
        assert_eq!(a.used(), used - BIG);
        assert!(a.get(big, 1).is_none());
        a.get_mut(next, 3).unwrap().copy_from_slice(b"abc");
        assert_eq!(a.get(next, 3), Some(&b"abc"[..]));
        assert!(a.get(next + 1, SMALL_CHUNK).is_none());
    }

    #[test]
    fn chunk_numbers_of_freed_big_records_are_reused() {
        let mut a = Arena::default();
        for i in 0..3 * MAX_CHUNKS {
            let p = a.alloc(40_000).unwrap_or_else(|| panic!("alloc {i}"));
            a.free(p, 40_000);
        }
        assert_eq!((a.used(), a.garbage()), (0, 0));
    }

    #[test]
    fn a_big_record_shrunk_in_place_leaves_no_garbage_once_freed() {
        let mut a = Arena::default();
        let p = a.alloc(100_000).unwrap();
        a.shrink(p, 100_000, 40_000);
        a.free(p, 40_000);
        assert_eq!((a.used(), a.garbage()), (0, 0));
    }
}
