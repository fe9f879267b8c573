//! The bytes of a regular file, behind a type of its own so that their storage can change
//! (deduplicated chunks and versions) without touching the rest of the core.
//!
//! Today: a sparse map of fixed 64 KiB blocks. A block holds the bytes from its start up to
//! the last byte ever written in it; bytes past a block's end (and absent blocks) read as
//! zeros. Small files therefore cost only their length, holes cost nothing, and appends are
//! amortised O(1) per byte.

use std::collections::BTreeMap;

use super::error::{Errno, Result};

/// Bytes per block. SEEK_DATA/SEEK_HOLE work at this granularity.
pub const BLOCK: u64 = 64 * 1024;

/// The largest file size, as on Linux (`MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

#[derive(Default, Debug, Clone)]
pub struct FileContent {
    size: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
    /// Sum of the blocks' lengths: the bytes this file really holds.
    allocated: u64,
}

/// The end of `offset..offset+len`, or EFBIG past the largest file size.
pub fn checked_end(offset: u64, len: u64) -> Result<u64> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(end),
        _ => Err(Errno::EFBIG),
    }
}

impl FileContent {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes held in memory for this file (holes excluded).
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Up to `len` bytes from `offset`, fewer at the end of the file.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.size {
            return Vec::new();
        }
        let end = offset.saturating_add(len as u64).min(self.size);
        let mut out = vec![0u8; (end - offset) as usize];
        for (&index, block) in self.blocks.range(offset / BLOCK..=(end - 1) / BLOCK) {
            let block_start = index * BLOCK;
            let from = offset.max(block_start);
            let to = end.min(block_start + block.len() as u64);
            if from < to {
                let src = &block[(from - block_start) as usize..(to - block_start) as usize];
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        }
        out
    }

    /// Writes `data` at `offset`, growing the file as needed. Returns the change in
    /// allocated bytes.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<i64> {
        let end = checked_end(offset, data.len() as u64)?;
        let before = self.allocated;
        let mut pos = offset;
        while pos < end {
            let index = pos / BLOCK;
            let block_start = index * BLOCK;
            let in_block = (pos - block_start) as usize;
            let n = ((block_start + BLOCK).min(end) - pos) as usize;
            let src = &data[(pos - offset) as usize..(pos - offset) as usize + n];
            let block = self.blocks.entry(index).or_default();
            let old_len = block.len();
            if old_len < in_block + n {
                block.resize(in_block + n, 0);
                self.allocated += (in_block + n - old_len) as u64;
            }
            block[in_block..in_block + n].copy_from_slice(src);
            pos += n as u64;
        }
        self.size = self.size.max(end);
        Ok(self.allocated as i64 - before as i64)
    }

    /// Sets the size; bytes past a shrink are gone, a grow reads as zeros. Returns the change
    /// in allocated bytes.
    pub fn truncate(&mut self, size: u64) -> Result<i64> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let before = self.allocated;
        if size < self.size {
            self.clear_from(size);
        }
        self.size = size;
        Ok(self.allocated as i64 - before as i64)
    }

    /// Drops every byte at or after `from`.
    fn clear_from(&mut self, from: u64) {
        let first_whole = from.div_ceil(BLOCK);
        for (_, block) in self.blocks.split_off(&first_whole) {
            self.allocated -= block.len() as u64;
        }
        if from % BLOCK != 0 {
            let index = from / BLOCK;
            let keep = (from - index * BLOCK) as usize;
            if let Some(block) = self.blocks.get_mut(&index) {
                if block.len() > keep {
                    self.allocated -= (block.len() - keep) as u64;
                    block.truncate(keep);
                }
            }
        }
    }

    /// Zeros `offset..offset+len` (within the file) and frees whole blocks inside it; the
    /// size does not change. Returns the change in allocated bytes.
    pub fn punch_hole(&mut self, offset: u64, len: u64) -> i64 {
        let before = self.allocated;
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return 0;
        }
        let indexes: Vec<u64> = self
            .blocks
            .range(offset / BLOCK..=(end - 1) / BLOCK)
            .map(|(&i, _)| i)
            .collect();
        for index in indexes {
            let block_start = index * BLOCK;
            let from = offset.max(block_start);
            let to = end.min(block_start + BLOCK);
            let Some(block) = self.blocks.get_mut(&index) else {
                continue;
            };
            let len = block.len() as u64;
            if from == block_start && to >= block_start + len {
                self.allocated -= len;
                self.blocks.remove(&index);
            } else if to >= block_start + len {
                let keep = (from - block_start) as usize;
                if block.len() > keep {
                    self.allocated -= (block.len() - keep) as u64;
                    block.truncate(keep);
                }
            } else {
                block[(from - block_start) as usize..(to - block_start) as usize].fill(0);
            }
        }
        self.allocated as i64 - before as i64
    }

    /// The first offset at or after `offset` that holds data (`SEEK_DATA`).
    pub fn seek_data(&self, offset: u64) -> Result<u64> {
        if offset >= self.size {
            return Err(Errno::ENXIO);
        }
        for (&index, block) in self.blocks.range(offset / BLOCK..) {
            let block_start = index * BLOCK;
            if block.is_empty() || offset >= block_start + block.len() as u64 {
                continue;
            }
            let found = offset.max(block_start);
            return if found < self.size {
                Ok(found)
            } else {
                Err(Errno::ENXIO)
            };
        }
        Err(Errno::ENXIO)
    }

    /// The first offset at or after `offset` inside a hole (`SEEK_HOLE`); the end of the
    /// file counts as a hole.
    pub fn seek_hole(&self, offset: u64) -> Result<u64> {
        if offset >= self.size {
            return Err(Errno::ENXIO);
        }
        let mut pos = offset;
        loop {
            let index = pos / BLOCK;
            let block_start = index * BLOCK;
            match self.blocks.get(&index) {
                Some(block) if pos < block_start + block.len() as u64 => {
                    if block.len() as u64 == BLOCK {
                        pos = block_start + BLOCK;
                    } else {
                        return Ok((block_start + block.len() as u64).min(self.size));
                    }
                }
                _ => return Ok(pos.min(self.size)),
            }
            if pos >= self.size {
                return Ok(self.size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_read_as_zeros_and_sizes_track_writes() {
        let mut c = FileContent::default();
        c.write(BLOCK * 3 + 5, b"abc").unwrap();
        assert_eq!(c.size(), BLOCK * 3 + 8);
        assert_eq!(c.allocated(), 8);
        let all = c.read(0, usize::MAX);
        assert_eq!(all.len() as u64, c.size());
        assert!(all[..(BLOCK * 3 + 5) as usize].iter().all(|&b| b == 0));
        assert_eq!(&all[(BLOCK * 3 + 5) as usize..], b"abc");
    }

    #[test]
    fn truncate_drops_bytes_and_regrow_reads_zeros() {
        let mut c = FileContent::default();
        c.write(0, &vec![7u8; 200_000]).unwrap();
        c.truncate(10).unwrap();
        c.truncate(100_000).unwrap();
        let all = c.read(0, usize::MAX);
        assert_eq!(&all[..10], &[7u8; 10]);
        assert!(all[10..].iter().all(|&b| b == 0));
        assert_eq!(c.allocated(), 10);
    }

    #[test]
    fn punch_hole_zeros_and_frees() {
        let mut c = FileContent::default();
        c.write(0, &vec![1u8; (BLOCK * 3) as usize]).unwrap();
        c.punch_hole(10, BLOCK * 2);
        let all = c.read(0, usize::MAX);
        assert_eq!(all.len() as u64, BLOCK * 3);
        assert!(all[10..(BLOCK * 2 + 10) as usize].iter().all(|&b| b == 0));
        assert_eq!(all[(BLOCK * 2 + 10) as usize], 1);
        assert_eq!(c.seek_hole(0).unwrap(), 10);
        assert_eq!(c.seek_data(BLOCK).unwrap(), BLOCK * 2);
    }

    #[test]
    fn efbig_past_the_largest_size() {
        let mut c = FileContent::default();
        assert_eq!(c.write(MAX_FILE_SIZE, b"x"), Err(Errno::EFBIG));
        assert_eq!(c.write(u64::MAX - 1, b"xx"), Err(Errno::EFBIG));
        assert_eq!(c.truncate(MAX_FILE_SIZE + 1), Err(Errno::EFBIG));
    }
}
