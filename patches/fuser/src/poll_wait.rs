//! MEMFS-PATCH: polling `/dev/fuse` briefly before sleeping in it.
//!
//! A program that makes requests back to back (tar, rm -r, a stat walk) sends the next one a
//! few microseconds after its answer. A server thread asleep must be woken for it, and on a
//! virtual machine that wake-up costs more than serving the request. So after each request
//! one thread at a time (the poller) reads without blocking for up to `budget` before it
//! sleeps in `poll(2)`. An untar of postgresql-15 finds its next request within 50 µs in
//! nine polls out of ten; a compiler, between its files, mostly does not, and there each
//! miss would take the budget from a core the build needs. So the threads keep a running
//! hit rate of their polls and poll only while most of them hit, with one request in
//! [`PROBE_EVERY`] polled anyway to notice when that changes.
//!
//! Needs one descriptor per thread (`clone_fd`): `O_NONBLOCK` is a property of the open
//! file, and each thread sets it on its own.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::channel::Channel;

/// While polling is off, one request in this many is polled for anyway.
const PROBE_EVERY: u32 = 16;
/// The hit rate is kept in 1/1024ths, averaged over about the last 16 polls.
const ONE: u32 = 1024;
const HIT_RATE_WEIGHT: u32 = 16;
/// `spin_loop` hints between two reads of a poll (see `pause`).
const PAUSE_SPINS: u32 = 64;

/// What the serving threads share about polling.
#[derive(Debug)]
pub(crate) struct PollShared {
    /// Held by the thread that is polling: two pollers would take both cores.
    poller: AtomicBool,
    /// Recent polls that found a request, in 1/1024ths (updated without a lock: a lost
    /// update only shifts an average).
    hit_rate: AtomicU32,
    /// Requests received, for the probes.
    received: AtomicU32,
}

impl PollShared {
    pub(crate) fn new() -> Self {
        Self {
            poller: AtomicBool::new(false),
            hit_rate: AtomicU32::new(ONE),
            received: AtomicU32::new(0),
        }
    }

    /// Whether this request should be polled for: most recent polls hit, or a probe.
    fn worth_polling(&self) -> bool {
        self.hit_rate.load(Ordering::Relaxed) >= ONE / 2
            || self.received.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == 0
    }

    fn learn(&self, hit: bool) {
        let rate = self.hit_rate.load(Ordering::Relaxed);
        let rate = rate - rate / HIT_RATE_WEIGHT + if hit { ONE / HIT_RATE_WEIGHT } else { 0 };
        self.hit_rate.store(rate, Ordering::Relaxed);
    }
}

/// How one serving thread waits for its next request.
#[derive(Debug)]
pub(crate) struct PollWait {
    budget: Duration,
    shared: Arc<PollShared>,
    nonblocking: bool,
}

impl PollWait {
    /// `budget` zero never polls.
    pub(crate) fn new(budget: Duration, shared: Arc<PollShared>) -> Self {
        Self {
            budget,
            shared,
            nonblocking: false,
        }
    }

    /// The next request: polled for first while polling pays, unless another thread is
    /// polling.
    pub(crate) fn receive(&mut self, ch: &Channel, buffer: &mut [u8]) -> nix::Result<usize> {
        if self.budget.is_zero() {
            return ch.receive_retrying(buffer);
        }
        if !self.nonblocking {
            set_nonblocking(ch)?;
            self.nonblocking = true;
        }
        if self.shared.worth_polling()
            && self
                .shared
                .poller
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            let polled = self.poll(ch, buffer);
            self.shared.poller.store(false, Ordering::Release);
            self.shared.learn(polled.is_some());
            if let Some(result) = polled {
                return result;
            }
        }
        loop {
            match ch.receive(buffer) {
                Err(Errno::EAGAIN) => wait_readable(ch),
                Err(Errno::ENOENT | Errno::EINTR) => {}
                result => return result,
            }
        }
    }

    /// Reads without blocking until a request comes (`Some`) or the budget is spent.
    fn poll(&self, ch: &Channel, buffer: &mut [u8]) -> Option<nix::Result<usize>> {
        let start = Instant::now();
        loop {
            match ch.receive(buffer) {
                Err(Errno::EAGAIN) if start.elapsed() < self.budget => pause(),
                Err(Errno::EAGAIN) => return None,
                Err(Errno::ENOENT | Errno::EINTR) => {}
                result => return Some(result),
            }
        }
    }
}

/// Between two reads of a poll. Each read takes the lock of the kernel's request queue,
/// which the kernel also takes to queue a request, to end a background one (readahead)
/// and in `poll(2)` for the threads asleep; reading back to back kept that lock so busy
/// that in a cold 1 GiB read, waiting for it was 44% of the serving threads' time (19%
/// with the bytes still copied twice). About 1.6 µs on these machines (AMD EPYC).
fn pause() {
    for _ in 0..PAUSE_SPINS {
        std::hint::spin_loop();
    }
}

fn set_nonblocking(ch: &Channel) -> nix::Result<()> {
    let fd = ch.as_fd().as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor this channel owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sleeps until the kernel has a request queued (or the connection ends: the next read
/// then says so).
fn wait_readable(ch: &Channel) {
    let mut pfd = libc::pollfd {
        fd: ch.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, -1) };
}
