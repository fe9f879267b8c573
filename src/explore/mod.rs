//! `memfs chunks`: the chunking explorer.
//!
//! With one FILE it lists the chunks the given chunker cuts (offset, length, short BLAKE3
//! hash) and how much of the file dedup within the file would save. With FILE and EDITED it
//! compares fixed-size blocks with FastCDC: how many of EDITED's chunks a store that already
//! holds FILE would have to add. `--svg` draws the chunks of both files as coloured bars.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use memfs::store::chunker::{DEFAULT_AVG, DEFAULT_MAX, DEFAULT_MIN};
use memfs::store::{ChunkId, Chunker, ChunkerKind};

mod report;
mod svg;

use report::{print_comparison, print_listing};

/// One chunk of a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chunk {
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
        let text = svg::draw(&cmp, &names)?;
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

/// What EDITED costs a store that already holds FILE, under one chunker (or, for a single
/// file, what dedup within it saves).
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
