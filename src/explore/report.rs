//! The explorer's text output: the chunk listing of one file, and the comparison table
//! and run-by-run diff of two.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use memfs::store::{Chunker, ChunkerKind};
use memfs::units;

use memfs::store::ChunkId;

use super::{chunk_all, describe, percent, settings, Comparison};

// One file: the chunk listing.

pub(super) fn print_listing(
    out: &mut impl Write,
    file: &Path,
    data: &[u8],
    chunker: &Chunker,
) -> io::Result<()> {
    let chunks = chunk_all(chunker, data);
    writeln!(
        out,
        "{}: {} bytes ({}), {}",
        file.display(),
        data.len(),
        units::bytes(data.len() as u64),
        settings(chunker)
    )?;
    let w = data.len().to_string().len().max(6);
    writeln!(
        out,
        "{:>7}  {:>w$}  {:>7}  blake3",
        "index", "offset", "length"
    )?;
    for (i, c) in chunks.iter().enumerate() {
        writeln!(
            out,
            "{i:>7}  {:>w$}  {:>7}  {}",
            c.offset,
            c.len,
            c.hash.short()
        )?;
    }
    let mut seen = HashSet::with_capacity(chunks.len());
    let stored: u64 = chunks
        .iter()
        .filter(|c| seen.insert(c.hash))
        .map(|c| c.len as u64)
        .sum();
    let lengths = if chunks.is_empty() {
        "no lengths".to_string()
    } else {
        let min = chunks.iter().map(|c| c.len).min().unwrap_or(0);
        let max = chunks.iter().map(|c| c.len).max().unwrap_or(0);
        format!(
            "length min {min} avg {} max {max}",
            data.len() / chunks.len()
        )
    };
    writeln!(
        out,
        "summary: {} chunks, {} unique; {lengths}; {stored} bytes ({}, {} of the file) \
         stored after dedup within the file",
        chunks.len(),
        seen.len(),
        units::bytes(stored),
        percent(stored, data.len() as u64),
    )
}

pub(super) fn print_comparison(
    out: &mut impl Write,
    file: &Path,
    edited: &Path,
    a: &[u8],
    b: &[u8],
    cmp: &[Comparison; 2],
    given: &Chunker,
) -> io::Result<()> {
    let fw = file
        .display()
        .to_string()
        .len()
        .max(edited.display().to_string().len());
    let nw = a.len().max(b.len()).to_string().len();
    writeln!(
        out,
        "FILE    {:<fw$}  {:>nw$} bytes ({})",
        file.display().to_string(),
        a.len(),
        units::bytes(a.len() as u64)
    )?;
    writeln!(
        out,
        "EDITED  {:<fw$}  {:>nw$} bytes ({})",
        edited.display().to_string(),
        b.len(),
        units::bytes(b.len() as u64)
    )?;
    if given.kind == ChunkerKind::Fixed {
        writeln!(
            out,
            "(--chunker fixed: FastCDC shown with {} for comparison)",
            settings(&cmp[1].chunker)
        )?;
    }
    writeln!(out)?;

    let header = [
        "chunker",
        "chunks in FILE",
        "chunks in EDITED",
        "shared with FILE",
        "new chunks",
        "new bytes to store",
        "new % of EDITED",
    ];
    let rows: Vec<[String; 7]> = cmp
        .iter()
        .map(|c| {
            [
                describe(&c.chunker),
                c.a.len().to_string(),
                c.b.len().to_string(),
                c.shared.to_string(),
                c.new.to_string(),
                format!("{} ({})", c.new_bytes, units::bytes(c.new_bytes)),
                percent(c.new_bytes, c.b_len),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let mut s = String::from("|");
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            if i == 0 {
                let _ = write!(s, " {cell:<w$} |");
            } else {
                let _ = write!(s, " {cell:>w$} |");
            }
        }
        s
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    writeln!(out, "{}", line(&header))?;
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            if i == 0 {
                "-".repeat(w)
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    writeln!(out, "{}", line(&rule))?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "shared: EDITED chunks whose content FILE already has; new bytes: the distinct new \
         chunks a store holding FILE must add to hold EDITED as well."
    )?;
    writeln!(out)?;
    print_runs(out, &cmp[1])
}

/// One run of the diff view.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Shared,
    New,
    Dropped,
}

struct Run {
    kind: RunKind,
    chunks: usize,
    bytes: u64,
    /// Byte range in EDITED (unused for dropped runs).
    start: usize,
    end: usize,
}

/// EDITED as runs of shared and new chunks, with the FILE chunks that an edit replaced.
fn runs(c: &Comparison) -> Vec<Run> {
    let mut where_in_a: HashMap<ChunkId, Vec<usize>> = HashMap::with_capacity(c.a.len());
    for (i, ch) in c.a.iter().enumerate() {
        where_in_a.entry(ch.hash).or_default().push(i);
    }
    let mut runs: Vec<Run> = Vec::new();
    fn push(
        runs: &mut Vec<Run>,
        kind: RunKind,
        chunks: usize,
        bytes: u64,
        start: usize,
        end: usize,
    ) {
        if chunks == 0 {
            return;
        }
        // Show what an edit removed before what it added.
        let at = if kind == RunKind::Dropped && runs.last().is_some_and(|r| r.kind == RunKind::New)
        {
            runs.len() - 1
        } else {
            runs.len()
        };
        if at > 0 && runs[at - 1].kind == kind {
            let r = &mut runs[at - 1];
            r.chunks += chunks;
            r.bytes += bytes;
            r.end = end;
            return;
        }
        runs.insert(
            at,
            Run {
                kind,
                chunks,
                bytes,
                start,
                end,
            },
        );
    }
    let dropped = |from: usize, to: usize| -> (usize, u64) {
        c.a[from..to]
            .iter()
            .filter(|ch| !c.b_set.contains(&ch.hash))
            .fold((0, 0), |(n, b), ch| (n + 1, b + ch.len as u64))
    };
    let mut a_next = 0;
    for ch in &c.b {
        let end = ch.offset + ch.len;
        match where_in_a.get(&ch.hash) {
            Some(idxs) => {
                let j = idxs
                    .iter()
                    .copied()
                    .find(|&j| j >= a_next)
                    .unwrap_or(idxs[0]);
                if j >= a_next {
                    let (n, bytes) = dropped(a_next, j);
                    push(&mut runs, RunKind::Dropped, n, bytes, 0, 0);
                    a_next = j + 1;
                }
                push(&mut runs, RunKind::Shared, 1, ch.len as u64, ch.offset, end);
            }
            None => push(&mut runs, RunKind::New, 1, ch.len as u64, ch.offset, end),
        }
    }
    let (n, bytes) = dropped(a_next, c.a.len());
    push(&mut runs, RunKind::Dropped, n, bytes, 0, 0);
    runs
}

fn print_runs(out: &mut impl Write, c: &Comparison) -> io::Result<()> {
    const MAX_RUNS: usize = 40;
    let runs = runs(c);
    writeln!(
        out,
        "{}: EDITED as runs of chunks (= shared with FILE, + new, - FILE chunks no longer used)",
        describe(&c.chunker)
    )?;
    let plural = |n: usize| if n == 1 { "chunk" } else { "chunks" };
    let texts: Vec<(String, &Run)> = runs
        .iter()
        .map(|r| {
            let (sign, what) = match r.kind {
                RunKind::Shared => ('=', "shared"),
                RunKind::New => ('+', "new"),
                RunKind::Dropped => ('-', "dropped"),
            };
            let text = format!(
                "{sign} {} {} ({}) {what}",
                r.chunks,
                plural(r.chunks),
                units::bytes(r.bytes)
            );
            (text, r)
        })
        .collect();
    let w = texts.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    for (text, r) in texts.iter().take(MAX_RUNS) {
        if r.kind == RunKind::Dropped {
            writeln!(out, "  {text}")?;
        } else {
            writeln!(out, "  {text:<w$}   EDITED bytes {}..{}", r.start, r.end)?;
        }
    }
    if texts.len() > MAX_RUNS {
        let rest = &runs[MAX_RUNS..];
        let count = |k: RunKind| -> (usize, u64) {
            rest.iter()
                .filter(|r| r.kind == k)
                .fold((0, 0), |(n, b), r| (n + r.chunks, b + r.bytes))
        };
        let (s, sb) = count(RunKind::Shared);
        let (n, nb) = count(RunKind::New);
        writeln!(
            out,
            "  ... {} more runs: {s} shared chunks ({}), {n} new chunks ({})",
            rest.len(),
            units::bytes(sb),
            units::bytes(nb)
        )?;
    }
    Ok(())
}
