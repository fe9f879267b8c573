//! Tracing: what a traced mount records, what the analyses make of it, and that the trace is
//! complete however the mount ends.

mod common;
use common::*;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use memfs::trace::Record;

fn records(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["memfs_trace"], 1);
    lines.map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The ops a program's own calls cause, without the kernel's bookkeeping around them.
fn program_ops(recs: &[Record], ino: u64) -> Vec<&Record> {
    const NOISE: [&str; 8] = [
        "getattr", "lookup", "getxattr", "access", "statfs", "forget", "setattr", "ioctl",
    ];
    recs.iter()
        .filter(|r| !NOISE.contains(&r.op.as_str()))
        .filter(|r| r.ino == Some(ino) || r.op == "rename" || r.op == "unlink")
        .collect()
}

fn memfs_trace(args: &[&str]) -> String {
    let out = Command::new(MEMFS)
        .arg("trace")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "memfs trace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_known_sequence_is_recorded_in_order_with_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    // Without the writeback cache every write(2) is a request of its own. One serving
    // thread: the kernel sends RELEASE in the background after close, so with two threads
    // the first handle's release and the reopen race each other into the trace; one thread
    // takes them in the kernel's queue order.
    let m = Mount::with_args(&[
        "--trace",
        trace.to_str().unwrap(),
        "--no-writeback-cache",
        "--threads",
        "1",
    ]);
    let f = m.join("file");
    {
        let mut w = std::fs::File::create(&f).unwrap();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        w.sync_all().unwrap();
    }
    let mut text = String::new();
    std::fs::File::open(&f)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "hello world");
    std::fs::rename(&f, m.join("renamed")).unwrap();
    std::fs::remove_file(m.join("renamed")).unwrap();
    assert!(m.unmount().success());

    let recs = records(&trace);
    assert_eq!(recs.first().unwrap().op, "init");
    assert_eq!(recs.last().unwrap().op, "destroy");
    let create = recs.iter().find(|r| r.op == "create").unwrap();
    let ino = create.ino.unwrap();
    let ops: Vec<&str> = program_ops(&recs, ino)
        .iter()
        .map(|r| r.op.as_str())
        .collect();
    assert_eq!(
        ops,
        [
            "create", "write", "write", "fsync", "flush", "release", "open", "read", "flush",
            "release", "rename", "unlink"
        ],
        "{recs:#?}"
    );
    let seq = program_ops(&recs, ino);
    assert_eq!(create.name.as_deref(), Some("file"));
    assert_eq!(create.parent, Some(1));
    let flags = create.flags.as_deref().unwrap();
    assert!(
        flags.contains("O_WRONLY") && flags.contains("O_CREAT") && flags.contains("O_TRUNC"),
        "{flags}"
    );
    let fh = create.fh.unwrap();
    assert!(create.pid.unwrap() > 0 && create.result == "ok");
    assert_eq!(
        (seq[1].offset, seq[1].size, seq[1].bytes),
        (Some(0), Some(6), Some(6))
    );
    assert_eq!((seq[2].offset, seq[2].bytes), (Some(6), Some(5)));
    assert!(seq[1..6].iter().all(|r| r.fh == Some(fh)));
    assert_eq!(seq[3].version, Some(1), "fsync commits version 1");
    assert_eq!(seq[4].version, None, "nothing left to commit at close");
    assert_eq!(seq[7].bytes, Some(11));
    assert_eq!(seq[10].name.as_deref(), Some("file"));
    assert_eq!(seq[10].newname.as_deref(), Some("renamed"));
    assert_eq!(seq[11].name.as_deref(), Some("renamed"));
    // Times are ordered and durations measured.
    assert!(
        recs.windows(2)
            .filter(|w| w[0].unique != 0 && w[1].unique != 0)
            .count()
            > 5
    );
    assert!(recs.iter().any(|r| r.dur_ns > 0));
    // A failed lookup is recorded with its errno.
    assert!(recs
        .iter()
        .all(|r| r.result == "ok" || r.result.starts_with('E')));
}

#[test]
fn sessions_pair_opens_with_releases_and_find_close_to_open_windows() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let m = Mount::with_args(&["--trace", trace.to_str().unwrap(), "--no-writeback-cache"]);
    let f = m.join("shared.txt");
    {
        let mut writer = std::fs::File::create(&f).unwrap();
        writer.write_all(b"written but not yet committed").unwrap();
        // A second open while the writer holds uncommitted data: a close-to-open window.
        let mut reader = std::fs::File::open(&f).unwrap();
        let mut s = String::new();
        reader.read_to_string(&mut s).unwrap();
    }
    std::fs::write(m.join("other"), b"x").unwrap();
    assert!(m.unmount().success());

    let out = memfs_trace(&["sessions", trace.to_str().unwrap()]);
    let session_lines: Vec<&str> = out.lines().filter(|l| l.ends_with("/shared.txt")).collect();
    assert_eq!(
        session_lines.len(),
        3,
        "two sessions and a file line:\n{out}"
    );
    let create = session_lines.iter().find(|l| l.contains("create")).unwrap();
    // The writer's session: one write of 29 bytes, a flush, and version 1 committed.
    let cols: Vec<&str> = create.split_whitespace().collect();
    assert!(
        cols.contains(&"29B") && cols[cols.len() - 2] == "1",
        "{create}"
    );
    let file_line = session_lines.iter().find(|l| !l.contains("O_")).unwrap();
    let nums: Vec<&str> = file_line.split_whitespace().collect();
    assert_eq!(
        &nums[..4],
        ["2", "1", "1", "1"],
        "sessions overlapping windows versions: {file_line}"
    );
    assert!(out.contains("close-to-open windows (a file opened while another handle held written, uncommitted data): 1"), "{out}");

    let filtered = memfs_trace(&["sessions", trace.to_str().unwrap(), "--path", "/other"]);
    assert!(
        !filtered.contains("shared.txt") && filtered.contains("/other"),
        "{filtered}"
    );
    let summary = memfs_trace(&["summary", trace.to_str().unwrap()]);
    assert!(
        summary.lines().any(|l| l.trim_end().ends_with(" write")),
        "{summary}"
    );
    let json: serde_json::Value = serde_json::from_str(&memfs_trace(&[
        "summary",
        "--json",
        trace.to_str().unwrap(),
    ]))
    .unwrap();
    let write_calls = json["ops"]["write"]["calls"].as_u64().unwrap();
    let table_calls: u64 = summary
        .lines()
        .find(|l| l.trim_end().ends_with(" write"))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .unwrap();
    assert_eq!(write_calls, table_calls, "{json}");
    assert!(json["records"].as_u64().unwrap() >= write_calls);
    let hist = memfs_trace(&[
        "hist",
        trace.to_str().unwrap(),
        "--op",
        "write",
        "--by",
        "size",
    ]);
    assert!(hist.starts_with("write size: 2 calls"), "{hist}");
    let show = memfs_trace(&["show", trace.to_str().unwrap(), "--op", "create"]);
    assert_eq!(show.lines().count(), 2, "{show}");
    assert!(show.contains("create(\"/shared.txt\""), "{show}");
}

#[test]
fn the_trace_is_complete_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let mut m = Mount::with_args(&["--trace", trace.to_str().unwrap()]);
    for i in 0..200 {
        std::fs::write(m.join(format!("f{i}")), b"data").unwrap();
    }
    unsafe { libc::kill(m.pid() as i32, libc::SIGTERM) };
    let status = m.wait_exit(Duration::from_secs(20)).expect("memfs exits");
    assert!(status.success());
    let recs = records(&trace);
    assert_eq!(recs.last().unwrap().op, "destroy");
    let creates = recs.iter().filter(|r| r.op == "create").count();
    assert_eq!(creates, 200);
}

#[test]
fn an_unwritable_trace_file_is_refused_before_mounting() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(MEMFS)
        .arg("mount")
        .arg(dir.path())
        .args(["--trace", "/nonexistent-dir/t.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent-dir/t.jsonl") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!is_mounted(dir.path()));
}

/// Analyses stream: a million-record trace is summarised in far less memory than its size.
#[test]
fn analysis_of_a_million_records_runs_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("big.jsonl");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&trace).unwrap());
        writeln!(w, r#"{{"memfs_trace":1,"memfs_version":"0","mountpoint":"/m","options":"","start_unix":0}}"#).unwrap();
        let mut t = 0u64;
        for i in 0..250_000u64 {
            let ino = 2 + i % 5000;
            let fh = i + 1;
            t += 1000;
            writeln!(w, r#"{{"unique":{},"t_ns":{t},"dur_ns":{},"op":"create","parent":1,"name":"f{ino}","ino":{ino},"fh":{fh},"pid":7,"flags":"O_WRONLY|O_CREAT","result":"ok"}}"#, 4 * i + 1, 1000 + i % 977).unwrap();
            writeln!(w, r#"{{"unique":{},"t_ns":{t},"dur_ns":{},"op":"write","ino":{ino},"fh":{fh},"offset":0,"size":4096,"bytes":4096,"pid":7,"result":"ok"}}"#, 4 * i + 2, 2000 + i % 1234).unwrap();
            writeln!(w, r#"{{"unique":{},"t_ns":{t},"dur_ns":900,"op":"flush","ino":{ino},"fh":{fh},"pid":7,"result":"ok","version":{}}}"#, 4 * i + 3, i / 5000 + 1).unwrap();
            writeln!(w, r#"{{"unique":{},"t_ns":{t},"dur_ns":300,"op":"release","ino":{ino},"fh":{fh},"result":"ok"}}"#, 4 * i + 4).unwrap();
        }
    }
    let size = std::fs::metadata(&trace).unwrap().len();
    assert!(size > 100 << 20, "trace is {size} bytes");
    for args in [
        vec!["summary"],
        vec!["hist", "--op", "write"],
        vec!["sessions", "--path", "/f2"],
    ] {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(MEMFS)
            .arg("trace")
            .arg(args[0])
            .arg(&trace)
            .args(&args[1..])
            .stdout(std::process::Stdio::null())
            .output()
            .expect("/usr/bin/time");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let max_rss_kib: u64 = stderr.trim().lines().last().unwrap().parse().unwrap();
        assert!(
            max_rss_kib < 64 * 1024,
            "memfs trace {} used {max_rss_kib} KiB for a {size}-byte trace",
            args[0]
        );
    }
    let summary = memfs_trace(&["summary", trace.to_str().unwrap()]);
    let write = summary
        .lines()
        .find(|l| l.trim_end().ends_with(" write"))
        .unwrap();
    assert!(write.split_whitespace().nth(2) == Some("250000"), "{write}");
}
