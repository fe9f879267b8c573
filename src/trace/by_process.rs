//! `memfs trace summary --by process`: which programs made the requests, like `strace -c -f`
//! grouped by program. A pid is named by the process line the writer put before its first
//! record (format 2); pid 0 is the kernel itself (writeback, readahead).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::analyze::{fmt_bytes, fmt_ns};
use super::read::{lines, Line};
use super::{Op, Process, Record};

/// The name a program goes by in the per-process views: its command name, `kernel` for
/// pid 0, and `pid N` for a pid whose process had gone before the writer could look.
#[derive(Default)]
pub struct ProgramNames {
    comm: HashMap<u32, String>,
    parents: HashMap<u32, u32>,
}

impl ProgramNames {
    pub fn learn(&mut self, p: &Process) {
        if let Some(comm) = &p.comm {
            self.comm.insert(p.process, comm.clone());
        }
        if let Some(ppid) = p.ppid {
            self.parents.insert(p.process, ppid);
        }
    }

    /// The parent pid a process line gave `pid`.
    pub fn parent(&self, pid: u32) -> Option<u32> {
        self.parents.get(&pid).copied()
    }

    pub fn name(&self, pid: Option<u32>) -> String {
        match pid {
            None => "-".to_string(),
            Some(0) => "kernel".to_string(),
            Some(pid) => self
                .comm
                .get(&pid)
                .cloned()
                .unwrap_or_else(|| format!("pid {pid}")),
        }
    }
}

/// A trace's request records in order, with the programs its process lines named before
/// each: every analysis that shows who made a request reads the trace through this.
pub struct NamedRequests {
    lines: Box<dyn Iterator<Item = Result<Line>>>,
    pub names: ProgramNames,
}

impl NamedRequests {
    pub fn open(path: &Path) -> Result<NamedRequests> {
        Ok(NamedRequests {
            lines: Box::new(lines(path)?),
            names: ProgramNames::default(),
        })
    }

    /// The next request record, learning the process lines before it.
    pub fn next_request(&mut self) -> Option<Result<Record>> {
        loop {
            match self.lines.next()? {
                Ok(Line::Process(p)) => self.names.learn(&p),
                Ok(Line::Request(r)) => return Some(Ok(*r)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[derive(Default)]
struct ProgramStats {
    pids: HashSet<u32>,
    calls: u64,
    errors: u64,
    total_ns: u64,
    bytes_read: u64,
    bytes_written: u64,
    /// Per op: calls and time.
    ops: HashMap<Op, (u64, u64)>,
}

impl ProgramStats {
    /// The ops that took the most time, most first.
    fn top_ops(&self, n: usize) -> Vec<(&Op, u64, u64)> {
        let mut ops: Vec<_> = self.ops.iter().map(|(op, &(c, ns))| (op, c, ns)).collect();
        ops.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        ops.truncate(n);
        ops
    }
}

/// Per program, largest total time first.
fn program_stats(path: &Path) -> Result<Vec<(String, ProgramStats)>> {
    let mut requests = NamedRequests::open(path)?;
    let mut programs: HashMap<String, ProgramStats> = HashMap::new();
    while let Some(r) = requests.next_request() {
        let r = r?;
        let s = programs.entry(requests.names.name(r.pid)).or_default();
        if let Some(pid) = r.pid {
            s.pids.insert(pid);
        }
        s.calls += 1;
        if !r.result.is_ok() {
            s.errors += 1;
        }
        s.total_ns += r.dur_ns;
        match r.op {
            Op::Read => s.bytes_read += r.bytes.unwrap_or(0),
            Op::Write => s.bytes_written += r.bytes.unwrap_or(0),
            _ => {}
        }
        let op = s.ops.entry(r.op).or_default();
        op.0 += 1;
        op.1 += r.dur_ns;
    }
    let mut rows: Vec<_> = programs.into_iter().collect();
    rows.sort_by(|a, b| b.1.total_ns.cmp(&a.1.total_ns).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

/// The table: per program, its share of memfs's time, calls, errors, processes, bytes
/// read and written, and the three ops it spent most time in.
pub fn summary(path: &Path, out: &mut impl Write) -> Result<()> {
    let rows = program_stats(path)?;
    let all_ns: u64 = rows.iter().map(|(_, s)| s.total_ns).sum();
    writeln!(
        out,
        "{:>6} {:>10} {:>10} {:>8} {:>6} {:>10} {:>10}  {:<16} top ops by time (calls)",
        "% time", "total", "calls", "errors", "procs", "read", "written", "program"
    )?;
    for (name, s) in &rows {
        let top: Vec<String> = s
            .top_ops(3)
            .iter()
            .map(|(op, calls, _)| format!("{op} ({calls})"))
            .collect();
        writeln!(
            out,
            "{:>6.2} {:>10} {:>10} {:>8} {:>6} {:>10} {:>10}  {:<16} {}",
            100.0 * s.total_ns as f64 / all_ns.max(1) as f64,
            fmt_ns(s.total_ns),
            s.calls,
            s.errors,
            s.pids.len(),
            fmt_bytes(s.bytes_read),
            fmt_bytes(s.bytes_written),
            name,
            top.join(", ")
        )?;
    }
    Ok(())
}

/// The same numbers as one JSON object, per program with every op:
/// `{"programs": {"cc1": {"processes": N, "calls": N, ..., "ops": {"lookup": {...}}}}}`.
pub fn summary_json(path: &Path, out: &mut impl Write) -> Result<()> {
    let rows = program_stats(path)?;
    let mut programs = serde_json::Map::new();
    for (name, s) in &rows {
        let ops: serde_json::Map<String, serde_json::Value> = s
            .top_ops(usize::MAX)
            .into_iter()
            .map(|(op, calls, ns)| {
                (
                    op.to_string(),
                    serde_json::json!({"calls": calls, "total_ns": ns}),
                )
            })
            .collect();
        programs.insert(
            name.clone(),
            serde_json::json!({
                "processes": s.pids.len(),
                "calls": s.calls,
                "errors": s.errors,
                "total_ns": s.total_ns,
                "bytes_read": s.bytes_read,
                "bytes_written": s.bytes_written,
                "ops": ops,
            }),
        );
    }
    writeln!(out, "{}", serde_json::json!({ "programs": programs }))?;
    Ok(())
}
