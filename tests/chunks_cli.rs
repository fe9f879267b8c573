//! `memfs chunks`, the chunking explorer, run as a command (no mount needed).

use std::path::Path;
use std::process::{Command, Output};

use memfs::testdata::noise;

const MAX: usize = 64 * 1024;

fn memfs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memfs"))
        .args(args)
        .output()
        .expect("run memfs")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "memfs failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The (offset, length, hash) of every chunk line: `index offset length hash`.
fn chunk_lines(out: &str) -> Vec<(usize, usize, String)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 4 || f[3].len() != 12 {
                return None;
            }
            let _: usize = f[0].parse().ok()?;
            Some((f[1].parse().ok()?, f[2].parse().ok()?, f[3].to_string()))
        })
        .collect()
}

/// The table row for the chunker whose name starts with `name`, as its cells.
fn table_row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells[0].starts_with(name))
        .unwrap_or_else(|| panic!("no table row for {name} in:\n{out}"))
}

/// The "new bytes to store" cell of a row, as a number ("1234 (1.2 KiB)").
fn new_bytes(row: &[String]) -> u64 {
    row[5]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad new-bytes cell in {row:?}"))
}

#[test]
fn chunks_of_one_file_cover_it_within_max() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("noise.bin");
    let data = noise(1 << 20, 42);
    std::fs::write(&file, &data).unwrap();

    let out = stdout(&memfs(&["chunks", p(&file)]));
    let chunks = chunk_lines(&out);
    assert!(chunks.len() > 4, "too few chunk lines in:\n{out}");
    assert_eq!(
        chunks.iter().map(|c| c.1).sum::<usize>(),
        data.len(),
        "chunk lengths must sum to the size"
    );
    let mut offset = 0;
    for (off, len, hash) in &chunks {
        assert_eq!(*off, offset, "chunks must be contiguous");
        assert!(*len <= MAX, "chunk of {len} bytes is over max");
        let want = blake3_prefix(&data[*off..off + len]);
        assert_eq!(hash, &want);
        offset += len;
    }
    assert!(out.contains("summary:"), "no summary in:\n{out}");

    // Fixed blocks are exactly the block size, the last one excepted.
    let out = stdout(&memfs(&[
        "chunks",
        p(&file),
        "--chunker",
        "fixed",
        "--chunk-avg",
        "10000",
    ]));
    let chunks = chunk_lines(&out);
    assert_eq!(chunks.len(), data.len().div_ceil(10000));
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.1 == 10000));
}

/// The first 12 hex digits of the BLAKE3 hash.
fn blake3_prefix(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_string()
}

#[test]
fn an_insertion_costs_fastcdc_far_less_than_fixed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, edited) = (dir.path().join("orig"), dir.path().join("edited"));
    let a = noise(1 << 20, 7);
    let mut b = a.clone();
    let insert: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    b.splice(a.len() / 2..a.len() / 2, insert);
    std::fs::write(&orig, &a).unwrap();
    std::fs::write(&edited, &b).unwrap();

    let out = stdout(&memfs(&["chunks", p(&orig), p(&edited)]));
    let fixed = table_row(&out, "fixed");
    let cdc = table_row(&out, "FastCDC");
    let (fixed_new, cdc_new) = (new_bytes(&fixed), new_bytes(&cdc));
    // Fixed blocks shift after the insertion: about half the file is new.
    assert!(fixed_new > (b.len() / 3) as u64, "fixed: {fixed:?}\n{out}");
    assert!(cdc_new > 0, "{out}");
    assert!(
        cdc_new * 4 < fixed_new,
        "FastCDC new bytes {cdc_new} not < 25% of fixed {fixed_new}:\n{out}"
    );
    // Shared + new = chunks in EDITED.
    for row in [&fixed, &cdc] {
        let n = |i: usize| row[i].parse::<usize>().unwrap();
        assert_eq!(n(3) + n(4), n(2), "{row:?}");
    }
    // The diff view shows the new run between shared ones.
    assert!(out.contains(" shared"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("+ ")),
        "{out}"
    );

    // --chunker fixed still compares both.
    let out = stdout(&memfs(&[
        "chunks",
        p(&orig),
        p(&edited),
        "--chunker",
        "fixed",
    ]));
    assert!(new_bytes(&table_row(&out, "FastCDC")) * 4 < new_bytes(&table_row(&out, "fixed")));
}

#[test]
fn svg_has_rects() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, edited) = (dir.path().join("orig"), dir.path().join("edited"));
    let a = noise(300_000, 3);
    let mut b = a.clone();
    b.splice(
        1000..1000,
        b"a new paragraph near the start".iter().copied(),
    );
    std::fs::write(&orig, &a).unwrap();
    std::fs::write(&edited, &b).unwrap();

    for args in [vec![p(&orig), p(&edited)], vec![p(&orig)]] {
        let svg = dir.path().join("out.svg");
        let mut all = vec!["chunks"];
        all.extend(args);
        all.extend(["--svg", p(&svg)]);
        stdout(&memfs(&all));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
        assert!(text.trim_end().ends_with("</svg>"));
        assert!(text.matches("<rect").count() > 10);
        assert!(text.contains("FastCDC") && text.contains("fixed"));
        assert_eq!(
            text.matches("<text").count(),
            text.matches("</text>").count()
        );
        std::fs::remove_file(&svg).unwrap();
    }
}

#[test]
fn svg_of_a_file_with_many_chunks_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    // 24 MiB at 256-byte chunks: ~100k chunks per chunker.
    std::fs::write(&file, noise(24 << 20, 5)).unwrap();
    let svg = dir.path().join("big.svg");
    let o = memfs(&[
        "chunks",
        p(&file),
        "--chunk-min",
        "64",
        "--chunk-avg",
        "256",
        "--chunk-max",
        "1024",
        "--svg",
        p(&svg),
    ]);
    stdout(&o);
    let text = std::fs::read_to_string(&svg).unwrap();
    let rects = text.matches("<rect").count();
    assert!(rects <= 25_000, "{rects} rects");
    assert!(text.len() < 4 << 20, "{} bytes of SVG", text.len());
}

#[test]
fn a_missing_file_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file");
    let o = memfs(&["chunks", p(&missing)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("memfs: "), "{err}");
    assert!(err.contains(p(&missing)), "{err}");

    // Also as EDITED.
    let file = dir.path().join("present");
    std::fs::write(&file, b"hello").unwrap();
    let o = memfs(&["chunks", p(&file), p(&missing)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(p(&missing)), "{err}");
}

#[test]
fn bad_sizes_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, noise(10_000, 1)).unwrap();
    let o = memfs(&[
        "chunks",
        p(&file),
        "--chunk-min",
        "9000",
        "--chunk-avg",
        "4096",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--chunk-min <= --chunk-avg <= --chunk-max"),
        "{err}"
    );
    assert!(err.contains("9000"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn an_empty_file_has_no_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty");
    std::fs::write(&file, b"").unwrap();
    let out = stdout(&memfs(&["chunks", p(&file)]));
    assert!(chunk_lines(&out).is_empty());
    assert!(out.contains("0 chunks"), "{out}");
    let svg = dir.path().join("e.svg");
    stdout(&memfs(&["chunks", p(&file), p(&file), "--svg", p(&svg)]));
    assert!(std::fs::read_to_string(&svg).unwrap().ends_with("</svg>\n"));
}
