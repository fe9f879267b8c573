//! Where the scheduler wakes a ring's caller, and why memfs on rings runs its threads at
//! `SCHED_IDLE` when it may.
//!
//! A ring thread answers a request with a `COMMIT_AND_FETCH`, inside which the kernel wakes
//! the caller. The ring thread is still running on the caller's CPU at that moment, so the
//! scheduler, choosing a CPU for the caller, prefers an idle one: on two CPUs it moved the
//! caller to the other CPU after nearly every answer, and each round trip paid a wake-up
//! across CPUs. tar migrated 15,000–26,000 times in one untar of postgresql-15 (3–9 times
//! on /dev/fuse), and a `getxattr` took 51–70 µs, against 27–38 µs on /dev/fuse. A CPU that
//! runs only `SCHED_IDLE` threads counts as idle for that choice. With memfs's threads at
//! `SCHED_IDLE`, the caller is woken where it ran and the ring thread gives way to it at
//! once: 16–21 µs per `getxattr`, about 30 migrations (README "Yielding the CPU to the
//! caller").
//!
//! A `SCHED_IDLE` thread waits behind every other runnable thread of its scheduling group.
//! Beside two busy loops of its own session, a yielding memfs did not answer a `getxattr`
//! loop in 15 s. So memfs yields only when its group holds nothing but memfs: it leads its
//! own session (autogroup scheduling gives each session a group) and no CPU cgroup other
//! than the root holds it (a cgroup, not the session, is then the group, and may hold
//! anything). Against other groups, memfs's group still gets its fair share.
//!
//! Every memfs thread yields, not only the ring threads: ring threads that yield to
//! memfs's own commit workers, which do not, made a 1 GiB write 20–25% slower. The one
//! exception is the trace's writer, started before memfs yields (mount.rs): it names new
//! pids from /proc, racing their exit.
//!
//! A memfs that does not lead a session makes one ([`lead_own_session`]): started in the
//! foreground of a terminal and used from another, it is in neither its callers' session
//! nor one of its own, and paid the wake-ups across CPUs on every answer (65–70 µs per
//! `getxattr`, 28,000 migrations in 30,000 calls, against 15 µs and 30 in a session of its
//! own). The process the user started stays where it was, so the terminal's signals and
//! job control still reach the mount through it.

use std::io;

/// Gives memfs a scheduling group of its own if it can, so that it may yield, leading a
/// session of its own first if it needs to (which forks: call it before any thread
/// starts); otherwise says why it may not.
pub fn prepare_to_yield() -> Result<(), String> {
    sessions_are_groups()?;
    if unsafe { libc::getsid(0) != libc::getpid() } {
        lead_own_session()?;
    }
    Ok(())
}

/// Runs this thread at `SCHED_IDLE`, and with it every thread it starts from now on (after
/// [`prepare_to_yield`]). One way only: an unprivileged thread may not leave `SCHED_IDLE`.
pub fn yield_to_callers() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        return Err(format!("SCHED_IDLE: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether a session of its own would give this process a scheduling group of its own
/// (see the module doc).
fn sessions_are_groups() -> Result<(), String> {
    let autogroup =
        std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled").unwrap_or_default();
    if autogroup.trim() != "1" {
        return Err("autogroup scheduling is off (kernel.sched_autogroup_enabled)".into());
    }
    let cgroups = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
    let controllers =
        |path: &str| std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.controllers"));
    if in_cpu_cgroup(&cgroups, |path| controllers(path).ok()) {
        return Err("a CPU cgroup holds it, and may hold the programs it would yield to".into());
    }
    Ok(())
}

/// The signals that stop a mount, which the process the user started passes on to the
/// server (see [`lead_own_session`]).
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Makes the server the leader of a new session. A process cannot make one while it leads
/// a process group (as a shell's job does), so this forks, and returns in the child, which
/// makes the session and serves the mount. The process the user started stays in its
/// session and process group (in the terminal's foreground, if it was) without returning:
/// it passes SIGINT, SIGTERM and SIGHUP on to the server and ends as the server ends, with
/// its exit status or by its signal. The server gets SIGTERM (and unmounts) if that process
/// is killed. Fails, without forking, if threads are already running (a fork copies only
/// the caller).
fn lead_own_session() -> Result<(), String> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |tasks| tasks.count());
    if threads != 1 {
        return Err(format!(
            "it does not lead a session, and cannot make one with {threads} threads running"
        ));
    }
    // Blocked from before the fork, so none is lost before the parent waits for it. Not
    // ignored: a background job of a shell without job control starts with SIGINT ignored,
    // and an ignored signal is never delivered, not even to sigwaitinfo. (The server, like
    // before, catches them all with its own handlers.)
    let mut waited: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut before: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut waited);
        for sig in STOP_SIGNALS.into_iter().chain([libc::SIGCHLD]) {
            libc::signal(sig, libc::SIG_DFL);
            libc::sigaddset(&mut waited, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &waited, &mut before);
    }
    let parent = unsafe { libc::getpid() };
    match unsafe { libc::fork() } {
        -1 => {
            let err = io::Error::last_os_error();
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut()) };
            Err(format!(
                "it does not lead a session, and fork failed: {err}"
            ))
        }
        0 => unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
            // Cannot fail: a new child leads no process group.
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != parent {
                // Killed before the line above: nobody waits for this mount.
                libc::_exit(1);
            }
            Ok(())
        },
        server => pass_signals_until_exit(server, &waited),
    }
}

/// The parent's side of [`lead_own_session`]: with `waited` blocked, passes each stop
/// signal to `server`, and when it ends, ends the same way.
fn pass_signals_until_exit(server: libc::pid_t, waited: &libc::sigset_t) -> ! {
    loop {
        let sig = unsafe { libc::sigwaitinfo(waited, std::ptr::null_mut()) };
        if STOP_SIGNALS.contains(&sig) {
            unsafe { libc::kill(server, sig) };
            continue;
        }
        let mut status = 0;
        // Also SIGCHLD of a stopped or continued server (waitpid says 0 then), or EINTR.
        if unsafe { libc::waitpid(server, &mut status, libc::WNOHANG) } != server {
            continue;
        }
        unsafe {
            if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                libc::signal(sig, libc::SIG_DFL);
                let mut only: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut only);
                libc::sigaddset(&mut only, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
                libc::raise(sig);
                libc::_exit(128 + sig);
            }
            // _exit: the server flushed what was buffered before the fork, not this copy.
            libc::_exit(libc::WEXITSTATUS(status));
        }
    }
}

/// Whether `/proc/self/cgroup` (`cgroups`) puts this process under a CPU cgroup other than
/// the root. cgroup v1: the hierarchy with the `cpu` controller, at a path other than `/`.
/// cgroup v2 (`0::PATH`): a cgroup on PATH that lists `cpu` among its controllers, as read
/// by `controllers` (a cgroup whose controllers cannot be read counts as one).
fn in_cpu_cgroup(cgroups: &str, controllers: impl Fn(&str) -> Option<String>) -> bool {
    let mut v2_path = None;
    for line in cgroups.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(list), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if list.split(',').any(|c| c == "cpu") {
            return path != "/";
        }
        if list.is_empty() {
            v2_path = Some(path);
        }
    }
    let Some(path) = v2_path else {
        return false;
    };
    // A cgroup's tasks are scheduled in the nearest cgroup at or above it with the
    // controller: any of PATH's own or its ancestors', short of the root.
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    (1..=parts.len()).any(|n| {
        let at = format!("/{}", parts[..n].join("/"));
        controllers(&at).is_none_or(|list| list.split_whitespace().any(|c| c == "cpu"))
    })
}

#[cfg(test)]
mod tests {
    use super::in_cpu_cgroup;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cgroup_v1_counts_only_a_cpu_hierarchy_below_the_root() {
        let root = "4:memory:/some/job\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        assert!(!in_cpu_cgroup(root, none));
        let below = "3:cpu,cpuacct:/user.slice\n0::/user.slice\n";
        assert!(in_cpu_cgroup(below, none));
        // A hierarchy whose controllers merely contain the letters "cpu" is not it.
        assert!(!in_cpu_cgroup("5:cpuset:/box\n1:cpu:/\n", none));
    }

    #[test]
    fn cgroup_v2_counts_a_cgroup_or_ancestor_with_the_cpu_controller() {
        assert!(!in_cpu_cgroup("0::/\n", none));
        let only_memory = |_: &str| Some("memory pids\n".to_string());
        assert!(!in_cpu_cgroup(
            "0::/user.slice/session-1.scope\n",
            only_memory
        ));
        let on_the_slice = |p: &str| {
            Some(
                if p == "/user.slice" {
                    "cpu memory"
                } else {
                    "memory"
                }
                .to_string(),
            )
        };
        assert!(in_cpu_cgroup(
            "0::/user.slice/session-1.scope\n",
            on_the_slice
        ));
        // Unreadable controllers: assume the worst.
        assert!(in_cpu_cgroup("0::/user.slice\n", none));
    }
}
