//! Reading a trace file back, as a stream: plain JSON Lines or zstd-compressed (told apart by
//! the zstd magic number, not the name), format 1 or 2.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

use super::{Header, Process, Record};

/// One line of a trace after the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Boxed: a record is some 450 bytes, a process line 60.
    Request(Box<Record>),
    /// A pid's first appearance (format 2), written before that pid's first record.
    Process(Process),
}

/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The file's text, decompressed if it is zstd.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut file = File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap_or(0);
    let start = std::io::Cursor::new(magic[..n].to_vec());
    let joined = start.chain(file);
    if n == 4 && magic == ZSTD_MAGIC {
        let decoder = zstd::Decoder::new(joined)
            .with_context(|| format!("{}: reading zstd", path.display()))?;
        Ok(Box::new(BufReader::with_capacity(1 << 20, decoder)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 20, joined)))
    }
}

/// The header of a trace file (its first line).
pub fn header(path: &Path) -> Result<Header> {
    let mut first = String::new();
    open(path)?
        .read_line(&mut first)
        .with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&first)
        .with_context(|| format!("{}: line 1: not a memfs trace header", path.display()))
}

/// Every line after the header: request records and process lines.
pub fn lines(path: &Path) -> Result<impl Iterator<Item = Result<Line>>> {
    let shown = path.display().to_string();
    let mut lines = open(path)?.lines().enumerate();
    Ok(std::iter::from_fn(move || loop {
        let (i, line) = lines.next()?;
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(anyhow::anyhow!("{shown}: line {}: {e}", i + 1))),
        };
        if line.trim().is_empty() || (i == 0 && line.contains("\"memfs_trace\"")) {
            continue;
        }
        // Process lines start with their key; a request line starts with `unique` or `t_ns`.
        let parsed = if line.starts_with("{\"process\":") {
            serde_json::from_str(&line).map(Line::Process)
        } else {
            serde_json::from_str(&line).map(|r| Line::Request(Box::new(r)))
        };
        return Some(
            parsed.with_context(|| format!("{shown}: line {}: not a trace record", i + 1)),
        );
    }))
}

/// The request records of a trace file (the header and process lines skipped).
pub fn records(path: &Path) -> Result<impl Iterator<Item = Result<Record>>> {
    Ok(lines(path)?.filter_map(|line| match line {
        Ok(Line::Request(r)) => Some(Ok(*r)),
        Ok(Line::Process(_)) => None,
        Err(e) => Some(Err(e)),
    }))
}
