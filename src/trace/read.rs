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
///
/// A trace cut short (its disk full, memfs killed, the machine down) ends in part of a
/// line, or in part of a zstd frame. That end is not an error: the lines before it are
/// given, and a warning says where the trace stops. A malformed line that is complete is
/// an error.
pub fn lines(path: &Path) -> Result<impl Iterator<Item = Result<Line>>> {
    let shown = path.display().to_string();
    let mut reader = open(path)?;
    let mut text = String::new();
    let mut number = 0usize;
    let mut cut_short = false;
    Ok(std::iter::from_fn(move || loop {
        if cut_short {
            return None;
        }
        text.clear();
        number += 1;
        match reader.read_line(&mut text) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::warn!("{shown}: line {number}: the trace is cut short ({e})");
                cut_short = true;
                continue;
            }
            Err(e) => return Some(Err(anyhow::anyhow!("{shown}: line {number}: {e}"))),
        }
        let complete = text.ends_with('\n');
        let line = text.trim_end();
        if line.is_empty() || (number == 1 && line.contains("\"memfs_trace\"")) {
            continue;
        }
        // Process lines start with their key; a request line starts with `unique` or `t_ns`.
        let parsed = if line.starts_with("{\"process\":") {
            serde_json::from_str(line).map(Line::Process)
        } else {
            serde_json::from_str(line).map(|r| Line::Request(Box::new(r)))
        };
        if parsed.is_err() && !complete {
            tracing::warn!(
                "{shown}: line {number}: the trace is cut short inside this line; the lines \
                 before it are read"
            );
            cut_short = true;
            continue;
        }
        return Some(parsed.with_context(|| format!("{shown}: line {number}: not a trace record")));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str =
        r#"{"memfs_trace":1,"memfs_version":"0","mountpoint":"/m","options":"","start_unix":0}"#;

    fn record(unique: u64) -> String {
        format!(
            r#"{{"unique":{unique},"t_ns":{unique},"dur_ns":9,"op":"getattr","ino":1,"result":"ok"}}"#
        )
    }

    fn uniques(path: &Path) -> Result<Vec<u64>> {
        records(path)?.map(|r| Ok(r?.unique)).collect()
    }

    #[test]
    fn a_trace_cut_inside_its_last_line_gives_the_lines_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let whole = format!("{HEADER}\n{}\n{}\n", record(1), record(2));
        let third = record(3);
        std::fs::write(&path, format!("{whole}{}", &third[..40])).unwrap();
        assert_eq!(uniques(&path).unwrap(), [1, 2]);
        // Cut after its closing brace, it is whole: it is read.
        std::fs::write(&path, format!("{whole}{third}")).unwrap();
        assert_eq!(uniques(&path).unwrap(), [1, 2, 3]);
        // A complete line that is not a record is still an error.
        std::fs::write(&path, format!("{whole}{}\n{third}\n", &third[..40])).unwrap();
        let err = uniques(&path).unwrap_err().to_string();
        assert!(err.contains("line 4: not a trace record"), "{err}");
    }

    #[test]
    fn a_zstd_trace_cut_inside_a_frame_gives_what_was_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl.zst");
        let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
        writeln!(encoder, "{HEADER}").unwrap();
        for unique in 1..=20_000 {
            writeln!(encoder, "{}", record(unique)).unwrap();
        }
        let compressed = encoder.finish().unwrap();
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        let got = uniques(&path).unwrap();
        assert!(!got.is_empty() && got.len() < 20_000, "{}", got.len());
        assert!(got.iter().copied().eq(1..=got.len() as u64));
    }
}
