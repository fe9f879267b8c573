//! One lane of a CPU's ring queue: a thread, its io_uring with 128-byte SQEs, and the one
//! entry it registers (a header buffer and a payload buffer).
//!
//! Each CPU's queue is served by several lanes of one entry each rather than by one thread
//! with several entries, because of how the kernel picks an entry: the one made available
//! last (`fuse_uring_ent_avail` moves it to the head of the queue's list of available
//! entries, and a request takes the head). A thread of eight entries so took every request
//! of a burst, such as the two 1 MiB READs a read-ahead keeps in flight, and served them
//! one after the other while the other CPU idled. With one entry per thread, a request
//! that comes while a lane is busy goes to another lane, whose thread may run on another
//! CPU; a caller that waits for each answer is still served by one lane, woken where it
//! runs (README "Lanes").
//!
//! The kernel owns an entry's buffers from the moment its REGISTER or COMMIT_AND_FETCH is
//! submitted until that command completes with a request; the thread touches them only in
//! between. So the buffers are raw allocations, read and written through slices made for
//! the length of one request, and never freed while the kernel may still hold them.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::mpsc::Sender;
use std::time::Duration;

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

/// The user data of the entry's commands' completions and of the stop poll's.
const ENTRY: u64 = 0;
const STOP: u64 = 1;

/// A READ or WRITE at least this big lets its ring thread leave its CPU (see
/// [`Lane::serve`]).
const ROAMING_SIZE: u32 = 256 << 10;
/// How long a lane that left its CPU waits for a request before it goes back. A reader's
/// next READ, or the next WRITE of a write-back, comes within a millisecond or two; a lane
/// the next small request does not reach (the kernel gives it to the lane that answered
/// last) would otherwise be woken on another CPU, whenever it is next needed.
const ROAMING_IDLE: Duration = Duration::from_millis(20);

/// A zeroed, page-aligned buffer the kernel reads and writes.
struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// The buffer is plain memory; who may touch it when is the lane's protocol above.
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

/// A lane made before the mount: everything that can fail is done here, so that once the
/// kernel has agreed to use rings only the REGISTER command remains.
pub struct Lane {
    qid: u16,
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    header: Buffer,
    payload: Buffer,
    /// The two iovecs REGISTER points the kernel at; kept at a stable address.
    iov: Box<[libc::iovec; 2]>,
    /// The request the entry holds, to name in its COMMIT_AND_FETCH.
    commit_id: u64,
    /// Whether the kernel may hold the buffers: from the first REGISTER it accepted until
    /// the entry ends.
    registered: bool,
}

// The iovecs point into the lane's own buffers, which move with it.
unsafe impl Send for Lane {}

impl Lane {
    /// A lane of CPU `qid`'s queue whose payload buffer holds `payload_len` bytes.
    pub fn new(qid: u16, payload_len: usize) -> io::Result<Lane> {
        // The entry's command and the stop poll.
        let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
            .setup_cqsize(4)
            .build(2)?;
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
        Ok(Lane {
            qid,
            ring,
            header,
            payload,
            iov,
            commit_id: 0,
            registered: false,
        })
    }

    /// `fuse_uring_cmd_req` in the SQE's 80-byte command area.
    fn command(&self, commit_id: u64) -> [u8; 80] {
        let mut cmd = [0u8; 80];
        cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
        cmd[16..18].copy_from_slice(&self.qid.to_ne_bytes());
        cmd
    }

    fn register_sqe(&self, fuse: RawFd) -> squeue::Entry128 {
        let sqe = opcode::UringCmd80::new(types::Fd(fuse), FUSE_IO_URING_CMD_REGISTER)
            .cmd(self.command(0))
            .addr(Some(self.iov.as_ptr() as u64))
            .build()
            .user_data(ENTRY);
        with_len(sqe, 2)
    }

    fn commit_sqe(&self, fuse: RawFd) -> squeue::Entry128 {
        opcode::UringCmd80::new(types::Fd(fuse), FUSE_IO_URING_CMD_COMMIT_AND_FETCH)
            .cmd(self.command(self.commit_id))
            .build()
            .user_data(ENTRY)
    }

    fn push(&mut self, sqe: squeue::Entry128) -> io::Result<()> {
        // The entry's one command and the stop poll: the queue cannot be full.
        unsafe { self.ring.submission().push(&sqe) }
            .map_err(|_| io::Error::other("submission queue full"))
    }

    fn completions(&mut self) -> Vec<(u64, i32)> {
        self.ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect()
    }

    /// Registers the entry (retrying while the kernel answers EAGAIN: INIT not done) and
    /// the poll that ends the thread when `stop` becomes readable. Returns the completions
    /// that already carry a request.
    fn register(&mut self, fuse: RawFd, stop: RawFd) -> io::Result<Vec<(u64, i32)>> {
        let poll = opcode::PollAdd::new(types::Fd(stop), libc::POLLIN as u32)
            .build()
            .user_data(STOP);
        self.push(squeue::Entry128::from(poll))?;
        for _attempt in 0..500 {
            self.push(self.register_sqe(fuse))?;
            self.ring.submit()?;
            // A refused REGISTER completes at once; an accepted one stays queued until a
            // request comes.
            let mut refused = false;
            let mut ready = Vec::new();
            for (data, res) in self.completions() {
                match res {
                    r if data == ENTRY && (r == -libc::EAGAIN || r == -libc::EINTR) => {
                        refused = true
                    }
                    r if data == ENTRY && r < 0 => return Err(io::Error::from_raw_os_error(-r)),
                    _ => ready.push((data, res)),
                }
            }
            if !refused {
                self.registered = true;
                return Ok(ready);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::from(io::ErrorKind::TimedOut))
    }

    /// Serves requests until the kernel ends the entry (unmount) or `stop` is signalled.
    /// `started` hears once whether registration worked.
    ///
    /// The thread stays on its CPU, its callers', except after a big READ or WRITE, until
    /// the next request that is not one or [`ROAMING_IDLE`] without a request. The kernel
    /// copies a READ's reply into the page cache inside the COMMIT, on this thread's CPU,
    /// which is the reader's; the reader copies out of the page cache there too. So a 1 GiB
    /// cold read took 716–867 ms, against 418–612 ms on /dev/fuse, whose server thread runs
    /// on the other CPU. Allowed on every CPU after a big READ, the thread is woken on the
    /// idle one: 382–444 ms (README "Yielding the CPU to the caller"). A write-back's WRITEs
    /// come in bursts, queued on the CPU of the task writing back (the writer's, in an
    /// fsync); lanes allowed on every CPU after them took 100 MiB of small writes and an
    /// fsync in 104–119 ms against 110–158 ms (README "Lanes").
    pub fn serve(
        mut self,
        fuse: RawFd,
        stop: RawFd,
        dispatcher: &Dispatcher,
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
        let mut roaming = false;
        loop {
            for (data, res) in pending.drain(..) {
                if data == STOP {
                    debug!(qid = self.qid, "ring stopped");
                    self.leak_if_registered();
                    return;
                }
                let next = match res {
                    0 => {
                        let big = self.holds_bulk_of(ROAMING_SIZE);
                        self.answer(dispatcher);
                        if big != roaming {
                            roaming = big;
                            if roaming {
                                allow_every_cpu();
                            } else {
                                pin_to_cpu(self.qid as usize);
                            }
                        }
                        self.commit_sqe(fuse)
                    }
                    // Resend whatever was refused for now.
                    r if r == -libc::EAGAIN || r == -libc::EINTR => {
                        if self.commit_id == 0 {
                            self.register_sqe(fuse)
                        } else {
                            self.commit_sqe(fuse)
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
                        debug!(qid = self.qid, "ring entry ended");
                        self.registered = false;
                        return;
                    }
                };
                if let Err(e) = self.push(next) {
                    error!(qid = self.qid, "ring: {e}");
                }
            }
            let waited = if roaming {
                let idle = types::Timespec::from(ROAMING_IDLE);
                let args = types::SubmitArgs::new().timespec(&idle);
                self.ring.submitter().submit_with_args(1, &args)
            } else {
                self.ring.submit_and_wait(1)
            };
            match waited {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {
                    // No big request followed: back to its CPU before the next one.
                    roaming = false;
                    pin_to_cpu(self.qid as usize);
                }
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

    /// Whether the entry, whose command has just completed with a request, holds a READ or
    /// a WRITE of at least `least` bytes.
    fn holds_bulk_of(&self, least: u32) -> bool {
        // Safety: as in `answer`, which runs next on this thread.
        let header = unsafe { self.header.slice() };
        InHeader::parse(&header[..IN_HEADER_LEN])
            .is_some_and(|h| Dispatcher::is_bulk_of(&h, &header[OP_IN..], least))
    }

    /// Serves the request the entry holds and writes its reply into the entry.
    ///
    /// A request that waits for other requests of the kernel's (a seek for data with writes
    /// cached above, see `request::Lseek`) is served here too: it holds this lane only, and
    /// the other lanes of the queue serve the WRITEs it waits for. The mount lets fewer
    /// such waits run at once than a queue has lanes (`mount::start_rings`).
    fn answer(&mut self, dispatcher: &Dispatcher) {
        // Safety: the command completed with a request, so the kernel is done with the
        // buffers until the COMMIT_AND_FETCH this reply goes out with.
        let (header, payload) = unsafe { (self.header.slice(), self.payload.slice()) };
        self.commit_id = read_u64(header, ENT_COMMIT_ID);
        serve_entry(header, payload, dispatcher);
    }

    /// Leaves the buffers allocated for good if the kernel may still hold them: it could
    /// write a request into them after this thread is gone.
    fn leak_if_registered(self) {
        let Lane {
            header,
            payload,
            iov,
            registered,
            ..
        } = self;
        if registered {
            std::mem::forget((header, payload, iov));
        }
    }
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
