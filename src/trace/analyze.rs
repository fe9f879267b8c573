//! Streaming analyses of a trace file: per-op summaries, histograms, open→release sessions
//! with close-to-open windows, and strace-like listings.
//!
//! Every analysis reads the file once, record by record. Memory grows with the number of
//! inodes and open handles seen, never with the length of the trace: latencies and sizes go
//! into HdrHistograms, which give percentiles to within 1 %.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::{Op, Record};

pub use super::read::records;

/// A histogram of latencies or sizes (HdrHistogram, two significant digits), with the
/// exact smallest and largest value beside it.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Made at the first sample: most sessions never write, and an empty one costs nothing.
    hdr: Option<hdrhistogram::Histogram<u64>>,
    min: u64,
    max: u64,
}

/// Significant decimal digits kept: values are told apart to within 1 %.
const SIGNIFICANT_DIGITS: u8 = 2;

impl Histogram {
    pub fn add(&mut self, v: u64) {
        let hdr = match &mut self.hdr {
            Some(hdr) => hdr,
            None => {
                self.min = v;
                self.hdr.insert(
                    // Auto-resizing, so any u64 fits; creating it with these digits cannot fail.
                    hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
                        .expect("2 significant digits are within HdrHistogram's range"),
                )
            }
        };
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        // `record` grows the histogram to fit; should growing ever fail, clamp rather than lose
        // the sample.
        if hdr.record(v).is_err() {
            hdr.saturating_record(v);
        }
    }

    pub fn count(&self) -> u64 {
        self.hdr.as_ref().map_or(0, |h| h.len())
    }

    /// The smallest sample (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value below which a fraction `q` of the samples lie (to within 1 %).
    pub fn quantile(&self, q: f64) -> u64 {
        match &self.hdr {
            Some(h) => h.value_at_quantile(q).clamp(self.min, self.max),
            None => 0,
        }
    }

    /// Counts per power of two: (low bound, count).
    pub fn log2_buckets(&self) -> Vec<(u64, u64)> {
        let mut out: BTreeMap<u64, u64> = BTreeMap::new();
        for v in self.hdr.iter().flat_map(|h| h.iter_recorded()) {
            let low = v.value_iterated_to();
            let p = if low == 0 {
                0
            } else {
                1u64 << (63 - low.leading_zeros())
            };
            *out.entry(p).or_default() += v.count_at_value();
        }
        out.into_iter().collect()
    }
}

/// Human-readable duration.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        n if n < 10_000 => format!("{n}ns"),
        n if n < 10_000_000 => format!("{:.1}us", n as f64 / 1e3),
        n if n < 10_000_000_000 => format!("{:.1}ms", n as f64 / 1e6),
        n => format!("{:.2}s", n as f64 / 1e9),
    }
}

/// Human-readable byte count, compact for table columns ("29B", "16.0KiB").
pub fn fmt_bytes(b: u64) -> String {
    crate::units::bytes_compact(b)
}

#[derive(Default)]
struct OpStats {
    calls: u64,
    errors: u64,
    total_ns: u64,
    latency: Histogram,
    bytes: u64,
}

/// Per-op totals of a whole trace, largest total time first.
fn op_stats(path: &Path) -> Result<Vec<(Op, OpStats)>> {
    let mut ops: HashMap<Op, OpStats> = HashMap::new();
    for r in records(path)? {
        let r = r?;
        let s = ops.entry(r.op).or_default();
        s.calls += 1;
        if !r.result.is_ok() {
            s.errors += 1;
        }
        s.total_ns += r.dur_ns;
        s.latency.add(r.dur_ns);
        s.bytes += r.bytes.unwrap_or(0);
    }
    let mut rows: Vec<_> = ops.into_iter().collect();
    rows.sort_by(|a, b| {
        (b.1.total_ns.cmp(&a.1.total_ns)).then_with(|| a.0.as_str().cmp(b.0.as_str()))
    });
    Ok(rows)
}

/// `memfs trace summary --json`: the same numbers as the table, for scripts
/// (`{"records": N, "errors": N, "ops": {"write": {"calls": .., ...}, ...}}`).
pub fn summary_json(path: &Path, out: &mut impl Write) -> Result<()> {
    let rows = op_stats(path)?;
    let mut ops = serde_json::Map::new();
    for (op, s) in &rows {
        ops.insert(
            op.to_string(),
            serde_json::json!({
                "calls": s.calls,
                "errors": s.errors,
                "total_ns": s.total_ns,
                "mean_ns": s.total_ns / s.calls.max(1),
                "p50_ns": s.latency.quantile(0.5),
                "p99_ns": s.latency.quantile(0.99),
                "bytes": s.bytes,
            }),
        );
    }
    let doc = serde_json::json!({
        "records": rows.iter().map(|(_, s)| s.calls).sum::<u64>(),
        "errors": rows.iter().map(|(_, s)| s.errors).sum::<u64>(),
        "ops": ops,
    });
    writeln!(out, "{doc}")?;
    Ok(())
}

/// `memfs trace summary`: a table like `strace -c`.
pub fn summary(path: &Path, out: &mut impl Write) -> Result<()> {
    let rows = op_stats(path)?;
    let total: u64 = rows.iter().map(|(_, s)| s.calls).sum();
    let all_ns: u64 = rows.iter().map(|(_, s)| s.total_ns).sum();
    writeln!(
        out,
        "{:>6} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10}  op",
        "% time", "total", "calls", "errors", "mean", "p50", "p99", "bytes"
    )?;
    for (op, s) in &rows {
        writeln!(
            out,
            "{:>6.2} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10}  {op}",
            100.0 * s.total_ns as f64 / all_ns.max(1) as f64,
            fmt_ns(s.total_ns),
            s.calls,
            s.errors,
            fmt_ns(s.total_ns / s.calls.max(1)),
            fmt_ns(s.latency.quantile(0.5)),
            fmt_ns(s.latency.quantile(0.99)),
            fmt_bytes(s.bytes),
        )?;
    }
    let errors: u64 = rows.iter().map(|(_, s)| s.errors).sum();
    writeln!(
        out,
        "{:>6} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10}  total",
        "100.00",
        fmt_ns(all_ns),
        total,
        errors,
        "",
        "",
        "",
        fmt_bytes(rows.iter().map(|(_, s)| s.bytes).sum())
    )?;
    Ok(())
}

/// `memfs trace hist`: a log2 histogram of one op's latency or size.
pub fn hist(path: &Path, op: &str, by_size: bool, out: &mut impl Write) -> Result<()> {
    let mut h = Histogram::default();
    for r in records(path)? {
        let r = r?;
        if r.op != op {
            continue;
        }
        let v = if by_size {
            r.bytes.or(r.size).unwrap_or(0)
        } else {
            r.dur_ns
        };
        h.add(v);
    }
    let what = if by_size { "size" } else { "latency" };
    writeln!(out, "{op} {what}: {} calls", h.count())?;
    if h.count() == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "p50 {}  p90 {}  p99 {}  max {}",
        show(h.quantile(0.5), by_size),
        show(h.quantile(0.9), by_size),
        show(h.quantile(0.99), by_size),
        show(h.max(), by_size)
    )?;
    let buckets = h.log2_buckets();
    let most = buckets.iter().map(|b| b.1).max().unwrap_or(1);
    for (low, n) in buckets {
        let high = if low == 0 { 1 } else { low * 2 };
        let bar = "#".repeat(((n * 50).div_ceil(most)) as usize);
        writeln!(
            out,
            "{:>10} .. {:<10} {:>9}  {bar}",
            show(low, by_size),
            show(high, by_size),
            n
        )?;
    }
    Ok(())
}

/// What a setattr sets, as `mode=0o644`, `uid=..`, `mtime=..` (seconds since the epoch).
fn set_values(r: &Record) -> Vec<String> {
    let secs = |ns: i64| format!("{:.9}", ns as f64 / 1e9);
    let mut out = Vec::new();
    if let Some(m) = r.mode {
        out.push(format!("mode={m:#o}"));
    }
    if let Some(u) = r.set_uid {
        out.push(format!("uid={u}"));
    }
    if let Some(g) = r.set_gid {
        out.push(format!("gid={g}"));
    }
    for (key, v) in [
        ("atime", r.atime_ns),
        ("mtime", r.mtime_ns),
        ("ctime", r.ctime_ns),
    ] {
        if let Some(ns) = v {
            out.push(format!("{key}={}", secs(ns)));
        }
    }
    out
}

fn show(v: u64, bytes: bool) -> String {
    if bytes {
        fmt_bytes(v)
    } else {
        fmt_ns(v)
    }
}

/// Paths of inodes, learnt from the trace's own lookup, create and rename records.
#[derive(Default)]
pub struct Paths {
    names: HashMap<u64, (u64, String)>,
    by_name: HashMap<(u64, String), u64>,
}

/// The name `Paths` gives an `open(O_TMPFILE)` file until a link names it.
const TMPFILE_NAME: &str = "(O_TMPFILE)";

impl Paths {
    /// Learns from one record.
    pub fn learn(&mut self, r: &Record) {
        if !r.result.is_ok() {
            return;
        }
        match r.op {
            Op::Lookup | Op::Create | Op::Mkdir | Op::Mknod | Op::Symlink => {
                if let (Some(parent), Some(name), Some(ino)) = (r.parent, &r.name, r.ino) {
                    self.names.insert(ino, (parent, name.clone()));
                    self.by_name.insert((parent, name.clone()), ino);
                }
            }
            // No name until a link gives it one: its directory and a placeholder meanwhile.
            Op::Tmpfile => {
                if let (Some(parent), Some(ino)) = (r.parent, r.ino) {
                    self.names.insert(ino, (parent, TMPFILE_NAME.to_string()));
                }
            }
            // A new name for the inode (git moves a finished pack into place by link, then
            // unlinks the temporary name).
            Op::Link => {
                if let (Some(parent), Some(name), Some(ino)) = (r.newparent, &r.newname, r.ino) {
                    self.names.insert(ino, (parent, name.clone()));
                    self.by_name.insert((parent, name.clone()), ino);
                }
            }
            Op::Rename => {
                if let (Some(p), Some(n), Some(np), Some(nn)) =
                    (r.parent, &r.name, r.newparent, &r.newname)
                {
                    let moved = self.by_name.remove(&(p, n.clone()));
                    let displaced = self.by_name.remove(&(np, nn.clone()));
                    if r.flags.as_deref().is_some_and(|f| f.contains("EXCHANGE")) {
                        if let Some(d) = displaced {
                            self.names.insert(d, (p, n.clone()));
                            self.by_name.insert((p, n.clone()), d);
                        }
                    }
                    if let Some(ino) = moved {
                        self.names.insert(ino, (np, nn.clone()));
                        self.by_name.insert((np, nn.clone()), ino);
                    }
                }
            }
            Op::Unlink | Op::Rmdir => {
                if let (Some(p), Some(n)) = (r.parent, &r.name) {
                    self.by_name.remove(&(p, n.clone()));
                }
            }
            _ => {}
        }
    }

    /// The path of an inode relative to the mount ("/a/b"), as far as the trace tells.
    pub fn path(&self, ino: u64) -> String {
        let mut parts = Vec::new();
        let mut cur = ino;
        for _ in 0..256 {
            if cur == 1 {
                break;
            }
            match self.names.get(&cur) {
                Some((parent, name)) => {
                    parts.push(name.as_str());
                    cur = *parent;
                }
                None => {
                    parts.push("?");
                    break;
                }
            }
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The path a record is about (for filters).
    pub fn of_record(&self, r: &Record) -> String {
        match (r.ino, r.parent, &r.name) {
            (_, Some(p), Some(n)) => {
                let dir = self.path(p);
                if dir == "/" {
                    format!("/{n}")
                } else {
                    format!("{dir}/{n}")
                }
            }
            (Some(ino), _, _) => self.path(ino),
            _ => String::new(),
        }
    }
}

/// Whether `path` is `filter` or lies below it.
fn path_matches(path: &str, filter: &str) -> bool {
    let filter = filter.trim_end_matches('/');
    let filter = if filter.starts_with('/') {
        filter.to_string()
    } else {
        format!("/{filter}")
    };
    path == filter || path.starts_with(&format!("{filter}/"))
}

/// One open of a file, from open (or create) to release.
struct Session {
    ino: u64,
    path: String,
    opened_by: Op,
    pid: Option<u32>,
    flags: String,
    start_ns: u64,
    reads: u64,
    writes: u64,
    flushes: u64,
    fsyncs: u64,
    getattrs: u64,
    bytes_read: u64,
    bytes_written: u64,
    write_sizes: Histogram,
    versions: Vec<u64>,
}

#[derive(Default)]
struct FileStats {
    sessions: u64,
    overlapping: u64,
    windows: u64,
    versions: u64,
}

/// `memfs trace sessions`: every open paired with its release, then per-file overlap and
/// close-to-open windows.
pub fn sessions(path: &Path, filter: Option<&str>, out: &mut impl Write) -> Result<()> {
    let mut paths = Paths::default();
    let mut open: HashMap<u64, Session> = HashMap::new();
    // Per inode: handles with data written since the last commit.
    let mut dirty: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut files: BTreeMap<String, FileStats> = BTreeMap::new();
    let mut windows: Vec<String> = Vec::new();
    writeln!(
        out,
        "{:>12} {:>10} {:>7} {:<26} {:>5} {:>6} {:>5} {:>5} {:>7} {:>23} {:>9} {:>9} {:>8}  path",
        "start",
        "duration",
        "pid",
        "flags",
        "reads",
        "writes",
        "flush",
        "fsync",
        "getattr",
        "write size min/med/max",
        "read",
        "written",
        "version"
    )?;
    for r in records(path)? {
        let r = r?;
        paths.learn(&r);
        if !r.result.is_ok() {
            continue;
        }
        match r.op {
            Op::Open | Op::Create | Op::Tmpfile => {
                let (Some(ino), Some(fh)) = (r.ino, r.fh) else {
                    continue;
                };
                let p = paths.path(ino);
                if filter.is_some_and(|f| !path_matches(&p, f)) {
                    continue;
                }
                let others = open.values().filter(|s| s.ino == ino).count() as u64;
                let stats = files.entry(p.clone()).or_default();
                stats.sessions += 1;
                if others > 0 {
                    stats.overlapping += 1;
                }
                if let Some(holders) = dirty.get(&ino).filter(|h| !h.is_empty()) {
                    stats.windows += 1;
                    let mut holders: Vec<_> = holders.iter().copied().collect();
                    holders.sort();
                    windows.push(format!(
                        "{:>12}  {p}: opened (fh {fh}, pid {}) while fh {holders:?} held written, uncommitted data",
                        fmt_ns(r.t_ns),
                        r.pid.map_or("?".into(), |p| p.to_string())
                    ));
                }
                open.insert(
                    fh,
                    Session {
                        ino,
                        path: p,
                        opened_by: r.op.clone(),
                        pid: r.pid,
                        flags: r.flags.clone().unwrap_or_default(),
                        start_ns: r.t_ns,
                        reads: 0,
                        writes: 0,
                        flushes: 0,
                        fsyncs: 0,
                        getattrs: 0,
                        bytes_read: 0,
                        bytes_written: 0,
                        write_sizes: Histogram::default(),
                        versions: Vec::new(),
                    },
                );
            }
            Op::Getattr => {
                if let Some(ino) = r.ino {
                    for s in open.values_mut().filter(|s| s.ino == ino) {
                        s.getattrs += 1;
                    }
                }
            }
            _ => {}
        }
        let Some(fh) = r.fh else { continue };
        let Some(s) = open.get_mut(&fh) else { continue };
        match r.op {
            Op::Read => {
                s.reads += 1;
                s.bytes_read += r.bytes.unwrap_or(0);
            }
            Op::Write => {
                s.writes += 1;
                let n = r.bytes.or(r.size).unwrap_or(0);
                s.bytes_written += n;
                s.write_sizes.add(n);
                dirty.entry(s.ino).or_default().insert(fh);
            }
            Op::Flush | Op::Fsync | Op::Release => {
                match r.op {
                    Op::Flush => s.flushes += 1,
                    Op::Fsync => s.fsyncs += 1,
                    _ => {}
                }
                if let Some(v) = r.version {
                    s.versions.push(v);
                    files.entry(s.path.clone()).or_default().versions += 1;
                    dirty.remove(&s.ino);
                } else if let Some(h) = dirty.get_mut(&s.ino) {
                    if r.op != Op::Release {
                        h.remove(&fh);
                    }
                }
                if r.op == Op::Release {
                    if let Some(s) = open.remove(&fh) {
                        if let Some(h) = dirty.get_mut(&s.ino) {
                            h.remove(&fh);
                        }
                        write_session(out, &s, r.t_ns + r.dur_ns)?;
                    }
                }
            }
            _ => {}
        }
    }
    for s in open.values() {
        write_session(out, s, u64::MAX)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>8} {:>11} {:>16} {:>8}  file",
        "sessions", "overlapping", "c2o windows", "versions"
    )?;
    for (p, f) in &files {
        writeln!(
            out,
            "{:>8} {:>11} {:>16} {:>8}  {p}",
            f.sessions, f.overlapping, f.windows, f.versions
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "close-to-open windows (a file opened while another handle held written, uncommitted data): {}",
        windows.len()
    )?;
    for w in &windows {
        writeln!(out, "{w}")?;
    }
    Ok(())
}

fn write_session(out: &mut impl Write, s: &Session, end_ns: u64) -> Result<()> {
    let duration = if end_ns == u64::MAX {
        "open".to_string()
    } else {
        fmt_ns(end_ns.saturating_sub(s.start_ns))
    };
    let sizes = if s.writes == 0 {
        "-".to_string()
    } else {
        format!(
            "{}/{}/{}",
            fmt_bytes(s.write_sizes.min()),
            fmt_bytes(s.write_sizes.quantile(0.5)),
            fmt_bytes(s.write_sizes.max())
        )
    };
    let versions = if s.versions.is_empty() {
        "-".to_string()
    } else {
        s.versions
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let flags = match s.opened_by {
        Op::Create => format!("create {}", s.flags),
        Op::Tmpfile => format!("tmpfile {}", s.flags),
        _ => s.flags.clone(),
    };
    writeln!(
        out,
        "{:>12} {:>10} {:>7} {:<26} {:>5} {:>6} {:>5} {:>5} {:>7} {:>23} {:>9} {:>9} {:>8}  {}",
        fmt_ns(s.start_ns),
        duration,
        s.pid.map_or("?".into(), |p| p.to_string()),
        flags,
        s.reads,
        s.writes,
        s.flushes,
        s.fsyncs,
        s.getattrs,
        sizes,
        fmt_bytes(s.bytes_read),
        fmt_bytes(s.bytes_written),
        versions,
        s.path
    )?;
    Ok(())
}

/// `memfs trace show`: one strace-like line per record, filtered.
pub fn show_records(
    path: &Path,
    op: Option<&str>,
    pid: Option<u32>,
    filter: Option<&str>,
    out: &mut impl Write,
) -> Result<()> {
    let mut paths = Paths::default();
    for r in records(path)? {
        let r = r?;
        let target = paths.of_record(&r);
        paths.learn(&r);
        if op.is_some_and(|o| r.op != o) || pid.is_some_and(|p| r.pid != Some(p)) {
            continue;
        }
        if filter.is_some_and(|f| !path_matches(&target, f)) {
            continue;
        }
        let mut args = Vec::new();
        if !target.is_empty() {
            args.push(format!("{target:?}"));
        }
        // An xattr request's name is the attribute's, not a directory entry's.
        if r.parent.is_none() {
            if let Some(name) = &r.name {
                args.push(format!("name={name:?}"));
            }
        }
        if let Some(nn) = &r.newname {
            let dir = r.newparent.map(|p| paths.path(p)).unwrap_or_default();
            args.push(format!(
                "{:?}",
                format!("{}/{nn}", dir.trim_end_matches('/'))
            ));
        }
        if let Some(ino) = r.ino {
            args.push(format!("ino={ino}"));
        }
        if let Some(fh) = r.fh {
            args.push(format!("fh={fh}"));
        }
        if let Some(o) = r.offset {
            args.push(format!("off={o}"));
        }
        if let Some(s) = r.size {
            args.push(format!("size={s}"));
        }
        if let Some(f) = &r.flags {
            args.push(f.clone());
        }
        args.extend(set_values(&r));
        let result = match (&r.bytes, &r.version, r.result.is_ok()) {
            (_, Some(v), true) => format!("ok (version {v})"),
            (Some(b), _, true) => b.to_string(),
            _ if r.negative => format!("{} (negative entry)", r.result),
            (_, _, _) => r.result.to_string(),
        };
        writeln!(
            out,
            "{:>12} [{}] {}({}) = {} <{}>",
            fmt_ns(r.t_ns),
            r.pid.map_or("?".into(), |p| p.to_string()),
            r.op,
            args.join(", "),
            result,
            fmt_ns(r.dur_ns)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.add(v);
        }
        let p50 = h.quantile(0.5);
        assert!((4500..=5700).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((9000..=10_000).contains(&p99), "{p99}");
        assert_eq!((h.min(), h.max(), h.count()), (1, 10_000, 10_000));
        let buckets = h.log2_buckets();
        assert_eq!(buckets.first(), Some(&(1, 1)));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 10_000);
        assert!(buckets.windows(2).all(|w| w[1].0 == w[0].0 * 2));
    }

    /// A successful record with no fields but its op (to be set).
    fn ok_record() -> Record {
        Record::new(Op::Other(String::new()))
    }

    #[test]
    fn paths_follow_renames() {
        let mut p = Paths::default();
        let rec = |op: &str, parent: u64, name: &str, ino: u64| Record {
            op: op.into(),
            parent: Some(parent),
            name: Some(name.into()),
            ino: Some(ino),
            ..ok_record()
        };
        p.learn(&rec("mkdir", 1, "d", 2));
        p.learn(&rec("create", 2, "f", 3));
        assert_eq!(p.path(3), "/d/f");
        p.learn(&Record {
            op: Op::Rename,
            parent: Some(2),
            name: Some("f".into()),
            newparent: Some(1),
            newname: Some("g".into()),
            ..ok_record()
        });
        assert_eq!(p.path(3), "/g");
        p.learn(&Record {
            op: Op::Link,
            ino: Some(3),
            newparent: Some(2),
            newname: Some("h".into()),
            ..ok_record()
        });
        assert_eq!(p.path(3), "/d/h", "the newest name");
        p.learn(&Record {
            op: Op::Tmpfile,
            parent: Some(2),
            ino: Some(4),
            ..ok_record()
        });
        assert_eq!(p.path(4), "/d/(O_TMPFILE)");
        p.learn(&Record {
            op: Op::Link,
            ino: Some(4),
            newparent: Some(1),
            newname: Some("t".into()),
            ..ok_record()
        });
        assert_eq!(p.path(4), "/t");
    }
}
