//! `memfs chunks`: the chunking explorer.
//!
//! With one FILE it lists the chunks the given chunker cuts (offset, length, short BLAKE3
//! hash) and how much of the file dedup within the file would save. With FILE and EDITED it
//! compares fixed-size blocks with FastCDC: how many of EDITED's chunks a store that already
//! holds FILE would have to add. `--svg` draws the chunks of both files as coloured bars.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use memfs::store::chunker::{DEFAULT_AVG, DEFAULT_MAX, DEFAULT_MIN};
use memfs::store::{ChunkId, Chunker, ChunkerKind};

/// One chunk of a file.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    offset: usize,
    len: usize,
    hash: ChunkId,
}

pub fn run(
    file: &Path,
    edited: Option<&Path>,
    chunker: &Chunker,
    svg: Option<&Path>,
) -> Result<()> {
    let a = read(file)?;
    let b = edited.map(read).transpose()?;
    let (fixed, cdc) = both_chunkers(chunker)?;

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let printed = match (&b, edited) {
        (Some(b), Some(edited)) => {
            let cmp = [Comparison::new(&fixed, &a, b), Comparison::new(&cdc, &a, b)];
            print_comparison(&mut out, file, edited, &a, b, &cmp, chunker)
                .and_then(|()| out.flush())
                .map(|()| Some(cmp))
        }
        _ => print_listing(&mut out, file, &a, chunker)
            .and_then(|()| out.flush())
            .map(|()| None),
    };
    // A closed pipe (`memfs chunks big | head`) ends quietly in main.
    let cmp = printed.context("writing to stdout")?;

    if let Some(svg_path) = svg {
        let cmp = match cmp {
            Some(cmp) => cmp,
            None => [Comparison::single(&fixed, &a), Comparison::single(&cdc, &a)],
        };
        let names = (name_of(file), edited.map(name_of));
        let text = draw_svg(&cmp, &names);
        std::fs::write(svg_path, text.as_bytes())
            .with_context(|| svg_path.display().to_string())?;
        // Not worth failing over if stdout went away meanwhile.
        let _ = writeln!(io::stdout(), "svg: wrote {}", svg_path.display());
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| path.display().to_string())
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The fixed-size and FastCDC chunkers the comparison and the SVG use. The fixed block size
/// is the given chunker's average. With `--chunker fixed` the given min/max are not known
/// any more (a fixed chunker keeps only its block size), so FastCDC uses avg/4, avg, avg*4
/// (the ratio of the defaults) when that is valid, and the defaults otherwise.
fn both_chunkers(chunker: &Chunker) -> Result<(Chunker, Chunker)> {
    let fixed = Chunker::new(ChunkerKind::Fixed, 0, chunker.avg, 0).map_err(anyhow::Error::msg)?;
    let cdc = match chunker.kind {
        ChunkerKind::FastCdc => chunker.clone(),
        ChunkerKind::Fixed => {
            let avg = chunker.avg & !1;
            Chunker::new(
                ChunkerKind::FastCdc,
                (avg / 4) & !1,
                avg,
                avg.saturating_mul(4),
            )
            .or_else(|_| Chunker::new(ChunkerKind::FastCdc, DEFAULT_MIN, DEFAULT_AVG, DEFAULT_MAX))
            .map_err(anyhow::Error::msg)?
        }
    };
    Ok((fixed, cdc))
}

/// Cuts `data` and hashes every chunk. Hashing is spread over a few threads for big files.
fn chunk_all(chunker: &Chunker, data: &[u8]) -> Vec<Chunk> {
    let cuts: Vec<(usize, usize)> = chunker.chunks(data).collect();
    let hash = |&(offset, len): &(usize, usize)| Chunk {
        offset,
        len,
        hash: ChunkId::of(&data[offset..offset + len]),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if data.len() < (8 << 20) || threads < 2 {
        return cuts.iter().map(hash).collect();
    }
    let per = cuts.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = cuts
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(hash).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("hashing thread panicked"))
            .collect()
    })
}

/// "512 B", "16.0 KiB", "1.5 MiB".
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A size for a chunker description: "16 KiB" when a whole number of KiB, else bytes.
fn size_label(n: usize) -> String {
    if n >= 1024 && n % (1024 * 1024) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// "fixed 16 KiB", "FastCDC 4/16/64 KiB", "FastCDC 2000/4000/8000 B".
fn describe(c: &Chunker) -> String {
    match c.kind {
        ChunkerKind::Fixed => format!("fixed {}", size_label(c.avg)),
        ChunkerKind::FastCdc => {
            let all = [c.min, c.avg, c.max];
            if all.iter().all(|&n| n % (1 << 20) == 0) {
                format!(
                    "FastCDC {}/{}/{} MiB",
                    c.min >> 20,
                    c.avg >> 20,
                    c.max >> 20
                )
            } else if all.iter().all(|&n| n % 1024 == 0) {
                format!(
                    "FastCDC {}/{}/{} KiB",
                    c.min >> 10,
                    c.avg >> 10,
                    c.max >> 10
                )
            } else {
                format!("FastCDC {}/{}/{} B", c.min, c.avg, c.max)
            }
        }
    }
}

/// The full settings: "FastCDC min 4096 avg 16384 max 65536 bytes", "fixed 16384-byte blocks".
fn settings(c: &Chunker) -> String {
    match c.kind {
        ChunkerKind::Fixed => format!("fixed {}-byte blocks", c.avg),
        ChunkerKind::FastCdc => format!("FastCDC min {} avg {} max {} bytes", c.min, c.avg, c.max),
    }
}

/// `part` as a percentage of `whole`: "7.4%", and "0.020%" for a small but non-zero part.
fn percent(part: u64, whole: u64) -> String {
    let p = if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    };
    if p == 0.0 || p >= 0.1 {
        format!("{p:.1}%")
    } else {
        format!("{p:.3}%")
    }
}

// ---------------------------------------------------------------------------------------
// One file: the chunk listing.

fn print_listing(
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
        human(data.len() as u64),
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
        human(stored),
        percent(stored, data.len() as u64),
    )
}

// ---------------------------------------------------------------------------------------
// Two files: what EDITED costs a store that already holds FILE.

struct Comparison {
    chunker: Chunker,
    a: Vec<Chunk>,
    /// Empty for a single file.
    b: Vec<Chunk>,
    a_len: u64,
    b_len: u64,
    two: bool,
    a_set: HashSet<ChunkId>,
    b_set: HashSet<ChunkId>,
    /// EDITED chunks whose content FILE has.
    shared: usize,
    /// EDITED chunks whose content FILE lacks.
    new: usize,
    /// Bytes of the distinct new chunks: what the store must add.
    new_bytes: u64,
    /// Distinct chunks and their bytes, for a single file.
    unique: usize,
    unique_bytes: u64,
}

impl Comparison {
    fn new(chunker: &Chunker, a: &[u8], b: &[u8]) -> Comparison {
        let (ca, cb) = std::thread::scope(|s| {
            let ha = s.spawn(|| chunk_all(chunker, a));
            let cb = chunk_all(chunker, b);
            (ha.join().expect("chunking thread panicked"), cb)
        });
        let a_set: HashSet<ChunkId> = ca.iter().map(|c| c.hash).collect();
        let b_set: HashSet<ChunkId> = cb.iter().map(|c| c.hash).collect();
        let shared = cb.iter().filter(|c| a_set.contains(&c.hash)).count();
        let mut added = HashSet::new();
        let new_bytes = cb
            .iter()
            .filter(|c| !a_set.contains(&c.hash) && added.insert(c.hash))
            .map(|c| c.len as u64)
            .sum();
        let new = cb.len() - shared;
        Comparison {
            chunker: chunker.clone(),
            a: ca,
            b: cb,
            a_len: a.len() as u64,
            b_len: b.len() as u64,
            two: true,
            a_set,
            b_set,
            shared,
            new,
            new_bytes,
            unique: 0,
            unique_bytes: 0,
        }
    }

    fn single(chunker: &Chunker, a: &[u8]) -> Comparison {
        let ca = chunk_all(chunker, a);
        let mut a_set = HashSet::with_capacity(ca.len());
        let unique_bytes = ca
            .iter()
            .filter(|c| a_set.insert(c.hash))
            .map(|c| c.len as u64)
            .sum();
        Comparison {
            chunker: chunker.clone(),
            a: ca,
            b: Vec::new(),
            a_len: a.len() as u64,
            b_len: 0,
            two: false,
            unique: a_set.len(),
            a_set,
            b_set: HashSet::new(),
            shared: 0,
            new: 0,
            new_bytes: 0,
            unique_bytes,
        }
    }
}

fn print_comparison(
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
        human(a.len() as u64)
    )?;
    writeln!(
        out,
        "EDITED  {:<fw$}  {:>nw$} bytes ({})",
        edited.display().to_string(),
        b.len(),
        human(b.len() as u64)
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
                format!("{} ({})", c.new_bytes, human(c.new_bytes)),
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
                human(r.bytes)
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
            human(sb),
            human(nb)
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The SVG.

/// Most rectangles the whole picture may hold; bars with more chunks merge neighbours.
const MAX_RECTS: usize = 20_000;
const BAR_PX: f64 = 1000.0;
const MARGIN: f64 = 20.0;
const BAR_H: f64 = 26.0;
const GREY: &str = "#d4d4d4";
const RED: &str = "#d03c32";

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A pleasant colour for a chunk: hue from the hash, saturation 60 %, lightness 65 %.
fn colour(hash: &ChunkId) -> String {
    let [lo, hi, ..] = *hash.as_bytes();
    let hue = u16::from_le_bytes([lo, hi]) as f64 * 360.0 / 65536.0;
    let (s, l) = (0.60, 0.65);
    let c = (1.0 - (2.0 * l - 1.0f64).abs()) * s;
    let hp = hue / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", to(r), to(g), to(b))
}

/// A rectangle to draw: a chunk, or a run of merged neighbours.
struct Cell {
    offset: usize,
    len: usize,
    /// Chunks in the cell.
    count: usize,
    /// The first chunk's hash (gives the colour).
    hash: ChunkId,
    /// In one file only (drawn grey, outlined red).
    alone: bool,
}

/// The cells of one bar: every chunk, or, over `budget`, runs merged to a minimum width.
fn cells(
    chunks: &[Chunk],
    other: Option<&HashSet<ChunkId>>,
    px_per_byte: f64,
    budget: usize,
) -> Vec<Cell> {
    let alone = |c: &Chunk| other.is_some_and(|set| !set.contains(&c.hash));
    let one = |c: &Chunk| Cell {
        offset: c.offset,
        len: c.len,
        count: 1,
        hash: c.hash,
        alone: alone(c),
    };
    let narrow = |len: usize| (len as f64) * px_per_byte < 3.0;
    // New chunks are all drawn alike, so a run of ones too narrow to be told apart anyway
    // is one rectangle (else their red outlines pile up into a solid block).
    let mut cells: Vec<Cell> = Vec::with_capacity(chunks.len());
    let mut tail_narrow_alone = false;
    for c in chunks {
        let cell = one(c);
        let narrow_alone = cell.alone && narrow(cell.len);
        match cells.last_mut() {
            Some(last) if narrow_alone && tail_narrow_alone => {
                last.len += cell.len;
                last.count += 1;
            }
            _ => cells.push(cell),
        }
        tail_narrow_alone = narrow_alone;
    }
    if cells.len() <= budget {
        return cells;
    }
    let min_px = BAR_PX / budget as f64;
    // First merge only neighbours of the same kind; if that still leaves too many, merge
    // regardless (a run is "alone" if any chunk in it is).
    for strict in [true, false] {
        let mut out: Vec<Cell> = Vec::new();
        for c in &cells {
            if let Some(last) = out.last_mut() {
                let thin = (last.len as f64) * px_per_byte < min_px;
                if thin && (!strict || last.alone == c.alone) {
                    last.len += c.len;
                    last.count += c.count;
                    last.alone |= c.alone;
                    continue;
                }
            }
            out.push(Cell { ..*c });
        }
        if !strict || out.len() <= budget + budget / 2 {
            return out;
        }
    }
    unreachable!()
}

fn draw_svg(cmp: &[Comparison; 2], names: &(String, Option<String>)) -> String {
    let two = cmp[0].two;
    let longest = cmp[0].a_len.max(cmp[0].b_len).max(1);
    let px_per_byte = BAR_PX / longest as f64;
    let bars = if two { 4 } else { 2 };
    let budget = MAX_RECTS / bars;
    let total_chunks: usize = cmp.iter().map(|c| c.a.len() + c.b.len()).sum();
    let tooltips = total_chunks <= 4000;

    let mut body = String::new();
    let mut y = 34.0;
    let title = match &names.1 {
        Some(e) => format!("memfs chunks: {} → {}", names.0, e),
        None => format!("memfs chunks: {}", names.0),
    };
    let _ = writeln!(
        body,
        r#"<text x="{MARGIN}" y="{y}" font-size="17" font-weight="bold">{}</text>"#,
        xml_escape(&title)
    );
    y += 18.0;

    for c in cmp {
        let label = describe(&c.chunker);
        // (label, chunks, the other file's chunks, file length)
        type Row<'a> = (String, &'a Vec<Chunk>, Option<&'a HashSet<ChunkId>>, u64);
        let mut rows: Vec<Row> = Vec::new();
        if two {
            rows.push((format!("{label}: original"), &c.a, Some(&c.b_set), c.a_len));
            rows.push((format!("{label}: edited"), &c.b, Some(&c.a_set), c.b_len));
        } else {
            rows.push((label.clone(), &c.a, None, c.a_len));
        }
        for (i, (row_label, chunks, other, len)) in rows.iter().enumerate() {
            y += 22.0;
            let name = if i == 0 {
                &names.0
            } else {
                names.1.as_ref().unwrap_or(&names.0)
            };
            let _ = writeln!(
                body,
                r##"<text x="{MARGIN}" y="{y}" xml:space="preserve"><tspan font-weight="bold">{}</tspan><tspan fill="#555"> — {}, {}, {} chunks</tspan></text>"##,
                xml_escape(row_label),
                xml_escape(name),
                human(*len),
                chunks.len()
            );
            y += 6.0;
            let cells = cells(chunks, *other, px_per_byte, budget);
            for cell in &cells {
                let x = MARGIN + cell.offset as f64 * px_per_byte;
                let w = cell.len as f64 * px_per_byte;
                // A thin white gap separates chunks wide enough to spare a pixel; a new
                // chunk stays visible however small.
                let w = if w >= 3.0 { w - 1.0 } else { w.max(0.05) };
                let attrs = if cell.alone {
                    let w = w.max(1.5);
                    format!(r#"width="{w:.2}" fill="url(#alone)" stroke="{RED}" stroke-width="1""#)
                } else {
                    format!(r#"width="{w:.2}" fill="{}""#, colour(&cell.hash))
                };
                let _ = write!(
                    body,
                    r#"<rect x="{x:.2}" y="{y:.1}" height="{BAR_H}" {attrs}"#
                );
                let only = if cell.alone { " only in this file" } else { "" };
                if tooltips && cell.count == 1 {
                    let _ = writeln!(
                        body,
                        "><title>offset {}, {} bytes, blake3 {}{only}</title></rect>",
                        cell.offset,
                        cell.len,
                        cell.hash.short(),
                    );
                } else if tooltips {
                    let _ = writeln!(
                        body,
                        "><title>{} chunks{only}, offset {}, {} bytes</title></rect>",
                        cell.count, cell.offset, cell.len,
                    );
                } else if cell.count > 1 {
                    let _ = writeln!(body, "/><!-- {} chunks -->", cell.count);
                } else {
                    let _ = writeln!(body, "/>");
                }
            }
            y += BAR_H;
        }
        y += 20.0;
        let caption = if two {
            format!(
                "{label}: {} of {} edited chunks shared, {} new — {} to store ({} of edited)",
                c.shared,
                c.b.len(),
                c.new,
                human(c.new_bytes),
                percent(c.new_bytes, c.b_len)
            )
        } else {
            format!(
                "{label}: {} chunks, {} unique — {} stored after dedup ({} of the file)",
                c.a.len(),
                c.unique,
                human(c.unique_bytes),
                percent(c.unique_bytes, c.a_len)
            )
        };
        let _ = writeln!(
            body,
            r##"<text x="{MARGIN}" y="{y}" fill="#333" font-style="italic">{}</text>"##,
            xml_escape(&caption)
        );
        y += 18.0;
    }

    // Legend.
    y += 14.0;
    let _ = writeln!(
        body,
        r#"<rect x="{MARGIN}" y="{:.1}" width="14" height="14" fill="{}"/><rect x="{:.1}" y="{:.1}" width="14" height="14" fill="{}"/>"#,
        y - 11.0,
        colour(&ChunkId::from_bytes([40; 32])),
        MARGIN + 15.0,
        y - 11.0,
        colour(&ChunkId::from_bytes([170; 32])),
    );
    let legend_shared = if two {
        "shared chunks in the same colour (identical content in both files)"
    } else {
        "one colour per chunk content; repeated chunks share a colour"
    };
    let _ = writeln!(
        body,
        r#"<text x="{:.1}" y="{y}">{}</text>"#,
        MARGIN + 36.0,
        legend_shared
    );
    if two {
        y += 22.0;
        let _ = writeln!(
            body,
            r#"<rect x="{MARGIN}" y="{:.1}" width="29" height="14" fill="url(#alone)" stroke="{RED}" stroke-width="1"/>"#,
            y - 11.0
        );
        let _ = writeln!(
            body,
            r#"<text x="{:.1}" y="{y}">new chunks grey, outlined red (only in this file: dropped from original, new in edited)</text>"#,
            MARGIN + 36.0
        );
    }
    y += 22.0;
    let scale = format!(
        "bar width {} px = {}; chunks wider than 3 px separated by a white line",
        BAR_PX,
        human(longest)
    );
    let _ = writeln!(
        body,
        r##"<text x="{MARGIN}" y="{y}" fill="#777" font-size="11">{}</text>"##,
        xml_escape(&scale)
    );
    y += 16.0;

    let width = BAR_PX + 2.0 * MARGIN;
    let mut svg = String::with_capacity(body.len() + 1024);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<defs><pattern id="alone" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="{GREY}"/><rect width="2" height="6" fill="#e8a09a"/></pattern></defs>"##
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex() {
        for b in [0u8, 60, 128, 200, 255] {
            let c = colour(&ChunkId::from_bytes([b; 32]));
            assert_eq!(c.len(), 7);
            assert!(c.starts_with('#'));
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(16 * 1024), "16.0 KiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
    }
}
