//! Secret bytes from the OS CSPRNG, fetched a kilobyte per system call.
//!
//! Every secret (tokens, keys) is made of bytes the kernel's CSPRNG
//! produced (`getrandom`), never of a user-space generator's
//! output. On this project's machines a `getrandom` call costs ~450 ns
//! whatever its size up to a few hundred bytes (glibc 2.36 predates the
//! vDSO `getrandom` of Linux 6.11 and glibc 2.41), which was a sixth of a
//! create. So each thread keeps a small pool: one call fills
//! [`POOL_BYTES`], each request takes the next unused bytes, and the bytes
//! it took are zeroed in the pool at once, so that no byte is ever handed
//! out twice or left behind after use. A request larger than a quarter of
//! the pool goes to the OS directly.
//!
//! **Fork.** A child made by `fork()` *without* `exec` starts with a copy
//! of the parent's pool and would hand out the bytes the parent hands out
//! next. Rust programs rarely fork without exec (`std::process::Command`
//! execs, and a multi-threaded process cannot fork safely), but one that
//! does must call [`discard_pool`] in the child before it makes a secret.

use std::cell::RefCell;

use zeroize::{Zeroize, Zeroizing};

/// Bytes fetched from the OS per refill: 32 session tokens.
pub const POOL_BYTES: usize = 1024;

/// The OS random source failed: no secret can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source failed")]
pub struct RandomUnavailable;

/// A thread's unused OS random bytes: `bytes[used..]`. Bytes before `used`
/// have been handed out and zeroed.
struct Pool {
    bytes: Zeroizing<[u8; POOL_BYTES]>,
    used: usize,
}

impl Pool {
    fn empty() -> Self {
        Pool {
            bytes: Zeroizing::new([0; POOL_BYTES]),
            used: POOL_BYTES,
        }
    }

    fn take(&mut self, out: &mut [u8]) -> Result<(), RandomUnavailable> {
        if POOL_BYTES - self.used < out.len() {
            // The leftover bytes are overwritten unused; `used` moves only
            // once the refill succeeded, so a failure leaves the pool empty.
            os_fill(self.bytes.as_mut())?;
            self.used = 0;
        }
        let taken = &mut self.bytes[self.used..self.used + out.len()];
        out.copy_from_slice(taken);
        taken.zeroize();
        self.used += out.len();
        Ok(())
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::empty());
}

fn os_fill(buf: &mut [u8]) -> Result<(), RandomUnavailable> {
    getrandom::fill(buf).map_err(|_| RandomUnavailable)
}

/// Fills `buf` with bytes from the OS CSPRNG, each used once (see the
/// module docs for the per-thread pool they come through).
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomUnavailable> {
    if buf.len() > POOL_BYTES / 4 {
        return os_fill(buf);
    }
    // During thread teardown the pool may be gone: ask the OS directly.
    POOL.try_with(|p| match p.try_borrow_mut() {
        Ok(mut pool) => pool.take(buf),
        Err(_) => os_fill(buf),
    })
    .unwrap_or_else(|_| os_fill(buf))
}

/// Zeroes and drops this thread's unused pooled bytes, so the next secret
/// comes from a fresh `getrandom` call. A process that forks without exec
/// calls this in the child before making any secret (the child has only
/// the forking thread, so one call is enough).
pub fn discard_pool() {
    let _ = POOL.try_with(|p| {
        if let Ok(mut pool) = p.try_borrow_mut() {
            *pool = Pool::empty();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn bytes_are_never_handed_out_twice() {
        let mut seen = HashSet::new();
        for _ in 0..(POOL_BYTES / 32) * 5 {
            let mut b = [0u8; 32];
            fill_random(&mut b).unwrap();
            assert!(seen.insert(b), "a 32-byte draw repeated");
        }
    }

    #[test]
    fn taken_bytes_are_zeroed_in_the_pool() {
        let mut pool = Pool::empty();
        let mut a = [0u8; 32];
        pool.take(&mut a).unwrap();
        assert_ne!(a, [0; 32]);
        assert_eq!(pool.used, 32);
        assert!(pool.bytes[..32].iter().all(|&b| b == 0));
        // The rest is still random (a zero 32-byte run is 2^-256 likely).
        assert!(pool.bytes[32..64].iter().any(|&b| b != 0));
    }

    #[test]
    fn a_draw_that_does_not_fit_refills_and_large_draws_bypass() {
        let mut pool = Pool::empty();
        let mut b = [0u8; 100];
        for _ in 0..POOL_BYTES / 100 {
            pool.take(&mut b).unwrap();
        }
        assert_eq!(pool.used, (POOL_BYTES / 100) * 100);
        pool.take(&mut b).unwrap();
        assert_eq!(pool.used, 100, "refilled, then took 100");

        let mut big = vec![0u8; POOL_BYTES];
        fill_random(&mut big).unwrap();
        assert!(big.iter().any(|&x| x != 0));
    }

    #[test]
    fn discard_pool_starts_afresh() {
        let mut a = [0u8; 32];
        fill_random(&mut a).unwrap();
        discard_pool();
        POOL.with(|p| assert_eq!(p.borrow().used, POOL_BYTES));
        let mut b = [0u8; 32];
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        POOL.with(|p| assert_eq!(p.borrow().used, 32));
    }
}
