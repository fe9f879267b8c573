//! One ring queue: an io_uring with 128-byte SQEs, its entries (a header buffer and a
//! payload buffer each, registered with the kernel), and the thread that serves it.
//!
//! The kernel owns an entry's buffers from the moment its REGISTER or COMMIT_AND_FETCH is
//! submitted until that command completes with a request; the thread touches them only in
//! between. So the buffers are raw allocations, read and written through slices made for
//! the length of one request, and never freed while the kernel may still hold them.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use tracing::{debug, error, warn};

use super::dispatch::{Answer, Dispatcher};
use super::wire::{InHeader, IN_HEADER_LEN};

/// `fuse_uring_cmd`: the two commands of `IORING_OP_URING_CMD` on /dev/fuse.
const FUSE_IO_URING_CMD_REGISTER: u32 = 1;
const FUSE_IO_URING_CMD_COMMIT_AND_FETCH: u32 = 2;

/// `struct fuse_uring_req_header`: `in_out` (the in header of a request, the out header of
/// its reply), `op_in` (the op's argument struct), then `fuse_uring_ent_in_out`.
const OP_IN: usize = 128;
const OP_IN_LEN: usize = 128;
const ENT_COMMIT_ID: usize = 256 + 8;
const ENT_PAYLOAD_SZ: usize = 256 + 16;
const HEADER_LEN: usize = 256 + 32;
/// Page-aligned, as libfuse allocates it, so the kernel could pin it.
const PAGE: usize = 4096;

/// The user data of the stop poll's completion; entries use their index.
const STOP: u64 = u64::MAX;
/// The user data of the poll that says a handed-off request has its reply.
const HANDED_BACK: u64 = u64::MAX - 1;

/// A READ at least this big lets its ring thread leave its CPU (see [`Queue::serve`]).
const ROAMING_READ: u32 = 256 << 10;

/// A zeroed, page-aligned buffer the kernel reads and writes.
struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// The buffer is plain memory; who may touch it when is the queue thread's protocol above.
unsafe impl Send for Buffer {}

impl Buffer {
    fn new(len: usize) -> io::Result<Buffer> {
        let layout = Layout::from_size_align(len.max(1), PAGE)
            .map_err(|_| io::Error::other("ring buffer size"))?;
        // Zeroed memory comes from calloc/mmap: untouched pages take no memory.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        Ok(Buffer { ptr, layout })
    }

    fn len(&self) -> usize {
        self.layout.size()
    }

    fn addr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The buffer, while the kernel does not hold it.
    ///
    /// Safety: only between the completion of this entry's command and its next submission,
    /// and by one thread at a time.
    unsafe fn slice<'a>(&self) -> &'a mut [u8] {
        std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len())
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// One entry: the buffers a request comes in and its reply goes out through.
struct RingEntry {
    header: Buffer,
    payload: Buffer,
    /// The two iovecs REGISTER points the kernel at; kept at a stable address.
    iov: Box<[libc::iovec; 2]>,
    /// The request this entry holds, to name in its COMMIT_AND_FETCH.
    commit_id: u64,
    registered: bool,
}

/// Requests served off the ring thread come back here: their entries, and an eventfd the
/// ring thread polls. Shared with those threads, so it outlives the last of them.
struct HandBack {
    entries: Mutex<Vec<usize>>,
    wake: OwnedFd,
}

impl HandBack {
    fn give_back(&self, i: usize) {
        self.entries.lock().push(i);
        let one = 1u64.to_ne_bytes();
        if unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), 8) } != 8 {
            error!("waking the ring thread: {}", io::Error::last_os_error());
        }
    }

    fn take(&self) -> Vec<usize> {
        let mut count = [0u8; 8];
        let _ = unsafe { libc::read(self.wake.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
        std::mem::take(&mut *self.entries.lock())
    }
}

// The iovecs point into the entry's own buffers, which move with it.
unsafe impl Send for RingEntry {}

/// A queue made before the mount: everything that can fail is done here, so that once the
/// kernel has agreed to use rings only REGISTER commands remain.
pub struct Queue {
    qid: u16,
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    entries: Vec<RingEntry>,
    hand_back: Arc<HandBack>,
}

impl Queue {
    pub fn new(qid: u16, depth: usize, payload_len: usize) -> io::Result<Queue> {
        // One SQE per entry, plus the stop and hand-back polls.
        let sq = (depth + 2).next_power_of_two() as u32;
        let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
            .setup_cqsize(sq * 2)
            .build(sq)?;
        let mut entries = Vec::with_capacity(depth);
        for _ in 0..depth {
            let header = Buffer::new(HEADER_LEN.max(PAGE))?;
            let payload = Buffer::new(payload_len)?;
            let iov = Box::new([
                libc::iovec {
                    iov_base: header.addr().cast(),
                    iov_len: HEADER_LEN,
                },
                libc::iovec {
                    iov_base: payload.addr().cast(),
                    iov_len: payload.len(),
                },
            ]);
            entries.push(RingEntry {
                header,
                payload,
                iov,
                commit_id: 0,
                registered: false,
            });
        }
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            return Err(io::Error::last_os_error());
        }
        let hand_back = Arc::new(HandBack {
            entries: Mutex::new(Vec::new()),
            wake: unsafe { OwnedFd::from_raw_fd(wake) },
        });
        Ok(Queue {
            qid,
            ring,
            entries,
            hand_back,
        })
    }

    /// `fuse_uring_cmd_req` in the SQE's 80-byte command area.
    fn command(&self, commit_id: u64) -> [u8; 80] {
        let mut cmd = [0u8; 80];
        cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
        cmd[16..18].copy_from_slice(&self.qid.to_ne_bytes());
        cmd
    }

    fn register_sqe(&self, fuse: RawFd, i: usize) -> squeue::Entry128 {
        let sqe = opcode::UringCmd80::new(types::Fd(fuse), FUSE_IO_URING_CMD_REGISTER)
            .cmd(self.command(0))
            .addr(Some(self.entries[i].iov.as_ptr() as u64))
            .build()
            .user_data(i as u64);
        with_len(sqe, 2)
    }

    fn commit_sqe(&self, fuse: RawFd, i: usize) -> squeue::Entry128 {
        opcode::UringCmd80::new(types::Fd(fuse), FUSE_IO_URING_CMD_COMMIT_AND_FETCH)
            .cmd(self.command(self.entries[i].commit_id))
            .build()
            .user_data(i as u64)
    }

    fn hand_back_poll(&self) -> squeue::Entry128 {
        let fd = self.hand_back.wake.as_raw_fd();
        let poll = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .build()
            .user_data(HANDED_BACK);
        squeue::Entry128::from(poll)
    }

    fn push(&mut self, sqe: squeue::Entry128) -> io::Result<()> {
        // One SQE per entry at most, plus two polls: the queue cannot be full.
        unsafe { self.ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("submission queue full"))
    }

    fn completions(&mut self) -> Vec<(u64, i32)> {
        self.ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect()
    }

    /// Registers every entry (retrying while the kernel answers EAGAIN: INIT not done) and
    /// the poll that ends the thread when `stop` becomes readable. Returns the completions
    /// that already carry requests.
    fn register(&mut self, fuse: RawFd, stop: RawFd) -> io::Result<Vec<(u64, i32)>> {
        let poll = opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32)
            .build()
            .user_data(STOP);
        self.push(squeue::Entry128::from(poll))?;
        self.push(self.hand_back_poll())?;
        let mut waiting: Vec<usize> = (0..self.entries.len()).collect();
        let mut ready = Vec::new();
        for _attempt in 0..500 {
            for &i in &waiting {
                self.push(self.register_sqe(fuse, i))?;
            }
            self.ring.submit()?;
            waiting.clear();
            // A refused REGISTER completes at once; an accepted one stays queued until a
            // request comes.
            for (data, res) in self.completions() {
                match res {
                    r if r == -libc::EAGAIN || r == -libc::EINTR => waiting.push(data as usize),
                    r if r < 0 && data < STOP - 1 => {
                        return Err(io::Error::from_raw_os_error(-r));
                    }
                    _ => ready.push((data, res)),
                }
            }
            if waiting.is_empty() {
                for e in &mut self.entries {
                    e.registered = true;
                }
                return Ok(ready);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::from(io::ErrorKind::TimedOut))
    }

    /// Serves requests until the kernel ends every entry (unmount) or `stop` is signalled.
    /// `started` hears once whether registration worked.
    ///
    /// The thread stays on its CPU, its callers', except while its batches hold big READs.
    /// The kernel copies a READ's reply into the page cache inside the COMMIT, on this
    /// thread's CPU, which is the reader's; the reader copies out of the page cache there
    /// too. So a 1 GiB cold read took 716–867 ms, against 418–612 ms on /dev/fuse, whose
    /// server thread runs on the other CPU. Allowed on every CPU while it serves big READs,
    /// the thread is woken on the idle one: 382–444 ms (README "Yielding the CPU to the
    /// caller").
    pub fn serve(
        mut self,
        fuse: RawFd,
        stop: RawFd,
        dispatcher: &Arc<Dispatcher>,
        started: Sender<io::Result<()>>,
    ) {
        pin_to_cpu(self.qid as usize);
        let mut pending = match self.register(fuse, stop) {
            Ok(ready) => {
                let _ = started.send(Ok(()));
                ready
            }
            Err(e) => {
                let _ = started.send(Err(e));
                self.leak_if_registered();
                return;
            }
        };
        let mut live = self.entries.len();
        let mut roaming = false;
        loop {
            let mut big_reads = false;
            for (data, res) in pending.drain(..) {
                if data == STOP {
                    debug!(qid = self.qid, "ring stopped");
                    self.leak_if_registered();
                    return;
                }
                if data == HANDED_BACK {
                    for i in self.hand_back.take() {
                        let sqe = self.commit_sqe(fuse, i);
                        self.push_logged(sqe);
                    }
                    let poll = self.hand_back_poll();
                    self.push_logged(poll);
                    continue;
                }
                let i = data as usize;
                if i >= self.entries.len() {
                    continue;
                }
                if res == 0 {
                    big_reads |= self.holds_read_of(i, ROAMING_READ);
                }
                let next = match res {
                    0 if self.answer(i, dispatcher) => Some(self.commit_sqe(fuse, i)),
                    0 => None,
                    r if r == -libc::EAGAIN || r == -libc::EINTR => {
                        // Resend whatever was refused for now.
                        if self.entries[i].commit_id == 0 {
                            Some(self.register_sqe(fuse, i))
                        } else {
                            Some(self.commit_sqe(fuse, i))
                        }
                    }
                    r => {
                        // ENOTCONN/ECONNABORTED: the connection is going away (unmount).
                        if r != -libc::ENOTCONN && r != -libc::ECONNABORTED {
                            error!(
                                qid = self.qid,
                                "ring entry ended: {}",
                                io::Error::from_raw_os_error(-r)
                            );
                        }
                        self.entries[i].registered = false;
                        live -= 1;
                        None
                    }
                };
                if let Some(sqe) = next {
                    self.push_logged(sqe);
                }
            }
            if live == 0 {
                debug!(qid = self.qid, "every ring entry ended");
                return;
            }
            if big_reads != roaming {
                roaming = big_reads;
                if roaming {
                    allow_every_cpu();
                } else {
                    pin_to_cpu(self.qid as usize);
                }
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => {
                    warn!(qid = self.qid, "ring wait: {e}");
                    self.leak_if_registered();
                    return;
                }
            }
            pending = self.completions();
        }
    }

    fn push_logged(&mut self, sqe: squeue::Entry128) {
        if let Err(e) = self.push(sqe) {
            error!(qid = self.qid, "ring: {e}");
        }
    }

    /// Whether entry `i`, whose command has just completed with a request, holds a READ of
    /// at least `least` bytes.
    fn holds_read_of(&self, i: usize, least: u32) -> bool {
        // Safety: as in `answer`, which runs next on this thread.
        let header = unsafe { self.entries[i].header.slice() };
        InHeader::parse(&header[..IN_HEADER_LEN])
            .is_some_and(|h| Dispatcher::is_read_of(&h, &header[OP_IN..], least))
    }

    /// Serves the request entry `i` holds and writes its reply into the entry; true when
    /// the reply is ready. A request that may wait for other kernel requests is served on a
    /// thread of its own instead (false), and handed back through `hand_back`: this thread
    /// is the only one serving its CPU's queue, where those requests may be waiting.
    fn answer(&mut self, i: usize, dispatcher: &Arc<Dispatcher>) -> bool {
        let entry = &mut self.entries[i];
        // Safety: the command completed with a request, so the kernel is done with the
        // buffers until the COMMIT_AND_FETCH this reply goes out with.
        let (header, payload) = unsafe { (entry.header.slice(), entry.payload.slice()) };
        entry.commit_id = read_u64(header, ENT_COMMIT_ID);
        let slow = InHeader::parse(&header[..IN_HEADER_LEN])
            .is_some_and(|h| Dispatcher::may_wait_for_kernel(&h, &header[OP_IN..]));
        if !slow {
            serve_entry(header, payload, dispatcher);
            return true;
        }
        let (shared, hand_back) = (dispatcher.clone(), self.hand_back.clone());
        let buffers = HeldBuffers { header, payload };
        let spawned = std::thread::Builder::new()
            .name("memfs-ring-wait".into())
            .spawn(move || {
                let HeldBuffers { header, payload } = buffers;
                serve_entry(header, payload, &shared);
                hand_back.give_back(i);
            });
        match spawned {
            Ok(_) => false,
            Err(e) => {
                warn!("no thread for a request that may wait: {e}; serving it here");
                let (header, payload) = unsafe { (entry.header.slice(), entry.payload.slice()) };
                serve_entry(header, payload, dispatcher);
                true
            }
        }
    }

    /// Leaves the buffers of entries the kernel may still hold allocated for good: the
    /// kernel could write a request into them after this thread is gone.
    fn leak_if_registered(&mut self) {
        for entry in std::mem::take(&mut self.entries) {
            if entry.registered {
                std::mem::forget(entry);
            }
        }
    }
}

/// An entry's buffers, lent to the thread serving its request off the ring.
struct HeldBuffers {
    header: &'static mut [u8],
    payload: &'static mut [u8],
}

/// Serves the request in an entry's buffers and writes the reply back into them.
fn serve_entry(header: &mut [u8], payload: &mut [u8], dispatcher: &Dispatcher) {
    let payload_len = read_u32(header, ENT_PAYLOAD_SZ) as usize;
    let Some(h) = InHeader::parse(&header[..IN_HEADER_LEN]) else {
        return;
    };
    // The op's struct is whatever of the request is in neither header nor payload.
    let arg_len = (h.len as usize)
        .saturating_sub(IN_HEADER_LEN + payload_len)
        .min(OP_IN_LEN);
    let arg = &header[OP_IN..OP_IN + arg_len];
    // Server::call already turns a handler's panic into EIO; this guards the decoding too,
    // as a ring thread that died would leave its CPU's requests waiting forever.
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatcher.serve(&h, arg, payload, payload_len)
    }))
    .unwrap_or_else(|_| {
        error!(
            opcode = h.opcode,
            "bug: decoding a ring request panicked; answering EIO"
        );
        Answer::errno(crate::fs::Errno::EIO)
    });
    // fuse_out_header: len, error, unique; then the body's length for the kernel.
    let len = (16 + answer.len) as u32;
    header[0..4].copy_from_slice(&len.to_ne_bytes());
    header[4..8].copy_from_slice(&answer.error.to_ne_bytes());
    header[8..16].copy_from_slice(&h.unique.to_ne_bytes());
    header[ENT_PAYLOAD_SZ..ENT_PAYLOAD_SZ + 4].copy_from_slice(&(answer.len as u32).to_ne_bytes());
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

/// Sets the SQE's `len` (bytes 24..28), which REGISTER reads as the iovec count and the
/// crate's `UringCmd80` does not set.
fn with_len(sqe: squeue::Entry128, len: u32) -> squeue::Entry128 {
    // Safety: Entry128 is `repr(C)` over the kernel's 128-byte SQE.
    let mut bytes: [u8; 128] = unsafe { std::mem::transmute(sqe) };
    bytes[24..28].copy_from_slice(&len.to_ne_bytes());
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(bytes) }
}

/// Lets this thread run on any CPU (see [`Queue::serve`]).
fn allow_every_cpu() {
    run_on(0..libc::CPU_SETSIZE as usize);
}

/// Runs this thread on `cpu`: the kernel queues a request on the ring of the CPU its caller
/// runs on, so the thread that serves it is woken there, without a cross-CPU wake-up.
fn pin_to_cpu(cpu: usize) {
    run_on([cpu]);
}

/// Sets the CPUs this thread may run on.
fn run_on(cpus: impl IntoIterator<Item = usize>) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            debug!(
                "setting the ring thread's CPUs: {}",
                io::Error::last_os_error()
            );
        }
    }
}
