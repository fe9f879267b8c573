//! The FUSE-over-io_uring transport (Linux 6.14+, `fuse.enable_uring=1`).
//!
//! INIT still goes through fuser on /dev/fuse, asking for `FUSE_OVER_IO_URING`. Then each
//! possible CPU's queue gets [`LANES_PER_QUEUE`] lanes, a thread each, which register one
//! entry each on /dev/fuse with `FUSE_IO_URING_CMD_REGISTER`; the kernel puts each request
//! in an entry of its caller's CPU queue, and one `COMMIT_AND_FETCH` both answers it and
//! takes the next. Forgets, interrupts and notifications stay on /dev/fuse, served by
//! fuser's threads.
//!
//! Once INIT has agreed to rings, the kernel holds every request until every CPU's queue
//! has an entry; a queue that never registers hangs the mount. So [`Rings::prepare`] does
//! everything that can fail (the kernel switch, each lane's io_uring and buffers)
//! before the mount, [`Rings::start`] waits until every lane has registered, and the
//! caller unmounts at once if it fails.
//!
//! memfs sets the mount's read-ahead to 2 MiB (`mount::DEFAULT_READ_AHEAD_KB`): a sequential
//! reader then has two 1 MiB READs in flight, which two lanes serve at once.
//!
//! Requests are decoded here (`wire`, `dispatch`) into the same [`crate::request`]
//! structs the fuser transport builds, and run through the same [`crate::request::Server`].

mod dispatch;
mod lane;
mod sched;
mod wire;

pub use dispatch::{Access, Dispatcher};
pub use sched::{prepare_to_yield, yield_to_callers};

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use lane::Lane;

/// The kernel's switch for FUSE over io_uring.
pub const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// Lanes per CPU queue, one entry each: how many requests one CPU can have in flight at
/// once, and how many threads can serve them at once (see `lane`). Each entry holds a
/// payload buffer of the largest request, whose pages are only touched as used. A cold
/// 1 GiB read took 418–469 ms with one thread of eight entries per CPU, and 355–380 ms with
/// four lanes and a 2 MiB read-ahead (README "Lanes"). At least two: a request that waits
/// for the kernel holds its lane while others serve the requests it waits for.
pub const LANES_PER_QUEUE: usize = 4;

/// How long [`Rings::start`] waits for every lane to register.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fails with the command that enables rings when this kernel does not offer them.
pub fn check_available() -> Result<()> {
    match std::fs::read_to_string(ENABLE_URING) {
        Ok(v) if matches!(v.trim(), "Y" | "1") => Ok(()),
        Ok(_) => bail!(
            "FUSE over io_uring is switched off in this kernel; switch it on with \
             `echo 1 > {ENABLE_URING}` (as root), or mount without --io-uring"
        ),
        Err(_) => bail!(
            "this kernel has no FUSE over io_uring (it needs Linux 6.14 or later built with \
             CONFIG_FUSE_IO_URING; {ENABLE_URING} is missing); mount without --io-uring"
        ),
    }
}

/// The largest request or reply body the kernel may put in an entry: its `max_pages` is
/// at most `fs.fuse.max_pages_limit`, and it may also carry a write of `max_write` bytes.
pub fn payload_len(max_write: u32) -> usize {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let max_pages = std::fs::read_to_string("/proc/sys/fs/fuse/max_pages_limit")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(256);
    (max_write as usize).max(max_pages * page).max(8192)
}

/// The CPU queues' lanes, made but not registered.
pub struct Rings {
    lanes: Vec<Lane>,
}

impl Rings {
    /// [`LANES_PER_QUEUE`] lanes for each possible CPU (the kernel's queue count), each with
    /// its io_uring and a payload buffer of `payload_len` bytes.
    pub fn prepare(payload_len: usize) -> Result<Rings> {
        check_available()?;
        #[cfg(debug_assertions)]
        if std::env::var_os("MEMFS_TEST_RINGS_FAIL").is_some() {
            bail!("injected failure (MEMFS_TEST_RINGS_FAIL, debug builds only)");
        }
        let cpus = possible_cpus().context("counting the CPUs")?;
        let lanes = (0..cpus * LANES_PER_QUEUE)
            .map(|n| {
                let qid = n / LANES_PER_QUEUE;
                Lane::new(qid as u16, payload_len)
                    .with_context(|| format!("setting up an io_uring of CPU {qid}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Rings { lanes })
    }

    /// Registers every lane on `fuse` (the session's /dev/fuse, after INIT) and serves
    /// them, one pinned thread each. Returns once every lane has registered, or fails
    /// (stopping those that had) if one could not.
    pub fn start(self, fuse: &impl AsFd, dispatcher: Arc<Dispatcher>) -> Result<Running> {
        let fuse = dup(fuse.as_fd().as_raw_fd()).context("duplicating /dev/fuse for the rings")?;
        let stop = eventfd().context("making the rings' stop event")?;
        let (started, reports) = mpsc::channel();
        let mut threads = Vec::new();
        for lane in self.lanes {
            let (fuse_fd, stop_fd) = (fuse.as_raw_fd(), stop.as_raw_fd());
            let dispatcher = dispatcher.clone();
            let started = started.clone();
            let thread = std::thread::Builder::new()
                .name("memfs-ring".into())
                .spawn(move || lane.serve(fuse_fd, stop_fd, &dispatcher, started))
                .context("starting a ring thread")?;
            threads.push(thread);
        }
        let running = Running {
            threads,
            stop,
            _fuse: fuse,
        };
        for _ in 0..running.threads.len() {
            match reports.recv_timeout(START_TIMEOUT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    running.stop();
                    return Err(anyhow!("registering a FUSE ring lane: {e}"));
                }
                Err(_) => {
                    running.stop();
                    bail!("a FUSE ring lane did not register within {START_TIMEOUT:?}");
                }
            }
        }
        Ok(running)
    }
}

/// The serving ring threads.
pub struct Running {
    threads: Vec<JoinHandle<()>>,
    stop: OwnedFd,
    /// The threads' /dev/fuse, open while they run.
    _fuse: OwnedFd,
}

impl Running {
    /// Ends every ring thread and waits for them. After an unmount they have ended already
    /// (the kernel ends every entry); this is for the paths that end without one.
    pub fn stop(self) {
        let one = 1u64.to_ne_bytes();
        if unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), 8) } != 8 {
            tracing::warn!("stopping the rings: {}", io::Error::last_os_error());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// The number of possible CPUs, as the kernel counts its queues (`num_possible_cpus`).
fn possible_cpus() -> Result<usize> {
    let text = std::fs::read_to_string(Path::new("/sys/devices/system/cpu/possible"))?;
    parse_cpu_list(text.trim()).ok_or_else(|| anyhow!("unreadable CPU list {text:?}"))
}

/// The count of a CPU list such as `0-3,6`.
fn parse_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.split(',') {
        count += match part.split_once('-') {
            Some((lo, hi)) => hi.parse::<usize>().ok()? + 1 - lo.parse::<usize>().ok()?,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    Some(count)
}

fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn eventfd() -> io::Result<OwnedFd> {
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists_count_their_cpus() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,6"), Some(5));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
