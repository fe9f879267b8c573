//! The bytes of a regular file: the last committed recipe overlaid with dirty extents.
//!
//! Writers change only the overlay (what POSIX readers see at once). A commit folds the
//! overlay into a new immutable recipe, re-chunking only from the chunk that holds the first
//! changed byte until a new cut lands on an old boundary past the last changed byte, and
//! reusing every other chunk. Runs of zeros (holes, punched ranges, zero-filled chunks) are
//! zero pieces that cost no memory and are chunked without being scanned, so a recipe is the
//! same whether a content was written in one go or through any sequence of edits.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fs::error::{Errno, Result};
use crate::store::recipe::{Piece, PieceData, Recipe, RecipeRef};
use crate::store::{Chunker, ContentStore, Put};

/// The largest file size, as on Linux (`MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// A dirty extent grows by appends up to this size before a new one starts, so a long
/// sequential write never reallocates one huge buffer.
const EXTENT_MAX: usize = 1 << 20;

#[derive(Clone, Debug)]
enum Extent {
    Data(Vec<u8>),
    Zeros(u64),
}

impl Extent {
    fn len(&self) -> u64 {
        match self {
            Extent::Data(v) => v.len() as u64,
            Extent::Zeros(n) => *n,
        }
    }

    /// The part from `from` (relative) to the end.
    fn tail(&self, from: u64) -> Extent {
        match self {
            Extent::Data(v) => Extent::Data(v[from as usize..].to_vec()),
            Extent::Zeros(n) => Extent::Zeros(n - from),
        }
    }

    fn truncate(&mut self, len: u64) {
        match self {
            Extent::Data(v) => v.truncate(len as usize),
            Extent::Zeros(n) => *n = len,
        }
    }
}

/// The end of `offset..offset+len`, or EFBIG past the largest file size.
pub fn checked_end(offset: u64, len: u64) -> Result<u64> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(end),
        _ => Err(Errno::EFBIG),
    }
}

#[derive(Debug, Clone, Default)]
pub struct FileContent {
    /// The last committed content.
    base: RecipeRef,
    /// Base bytes at or past this offset were cut off by a truncate and read as zeros.
    base_valid: u64,
    /// Changes since the last commit, by start offset; never overlapping.
    extents: BTreeMap<u64, Extent>,
    /// Bytes held by `Data` extents.
    dirty_bytes: u64,
    size: u64,
}

/// A commit chunked and stored but not yet installed (see [`FileContent::prepare_commit`]).
#[derive(Debug)]
pub struct Prepared {
    /// The new recipe; `None` when it equals the committed one.
    pub recipe: Option<RecipeRef>,
    pub new_bytes: u64,
    pub chunked_bytes: u64,
}

/// What a commit made.
#[derive(Debug, Clone)]
pub struct Committed {
    pub recipe: RecipeRef,
    /// Bytes of chunks that were new to the store.
    pub new_bytes: u64,
    /// Bytes that were chunked and hashed (the cost of the commit).
    pub chunked_bytes: u64,
}

impl FileContent {
    /// A content whose committed state is `recipe`.
    pub fn from_recipe(recipe: RecipeRef) -> FileContent {
        FileContent {
            size: recipe.size(),
            base_valid: recipe.size(),
            base: recipe,
            extents: BTreeMap::new(),
            dirty_bytes: 0,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The last committed recipe.
    pub fn base(&self) -> &RecipeRef {
        &self.base
    }

    /// Whether anything changed since the last commit.
    pub fn is_dirty(&self) -> bool {
        !self.extents.is_empty()
            || self.size != self.base.size()
            || self.base_valid < self.base.size()
    }

    /// Bytes of uncommitted data this content holds.
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty_bytes
    }

    /// Bytes that are not holes (for `st_blocks`): committed chunks plus dirty data.
    pub fn allocated(&self) -> u64 {
        self.base.data_bytes().min(self.base_valid) + self.dirty_bytes
    }

    /// Up to `len` bytes from `offset`, fewer at the end of the file.
    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.size {
            return Vec::new();
        }
        let end = offset.saturating_add(len as u64).min(self.size);
        let mut out = vec![0u8; (end - offset) as usize];
        let base_end = end.min(self.base_valid).min(self.base.size());
        if offset < base_end {
            self.base
                .read_into(offset, &mut out[..(base_end - offset) as usize]);
        }
        for (&s, e) in self.overlapping(offset, end) {
            let from = offset.max(s);
            let to = end.min(s + e.len());
            let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
            match e {
                Extent::Data(v) => dst.copy_from_slice(&v[(from - s) as usize..(to - s) as usize]),
                Extent::Zeros(_) => dst.fill(0),
            }
        }
        out
    }

    /// Extents that overlap `a..b`, in order.
    fn overlapping(&self, a: u64, b: u64) -> impl Iterator<Item = (&u64, &Extent)> {
        let before = self
            .extents
            .range(..a)
            .next_back()
            .filter(|(&s, e)| s + e.len() > a);
        before.into_iter().chain(self.extents.range(a..b))
    }

    /// Removes every extent byte in `a..b`, splitting extents at the edges.
    fn clip(&mut self, a: u64, b: u64) {
        if a >= b {
            return;
        }
        if let Some((&s, e)) = self.extents.range_mut(..a).next_back() {
            let end = s + e.len();
            if end > a {
                let right = (end > b).then(|| e.tail(b - s));
                let cut = end - a;
                e.truncate(a - s);
                if matches!(e, Extent::Data(_)) {
                    self.dirty_bytes -= cut;
                }
                if let Some(right) = right {
                    if let Extent::Data(v) = &right {
                        self.dirty_bytes += v.len() as u64;
                    }
                    self.extents.insert(b, right);
                }
            }
        }
        let inside: Vec<u64> = self.extents.range(a..b).map(|(&s, _)| s).collect();
        for s in inside {
            let Some(e) = self.extents.remove(&s) else {
                continue;
            };
            if let Extent::Data(v) = &e {
                self.dirty_bytes -= v.len() as u64;
            }
            if s + e.len() > b {
                let right = e.tail(b - s);
                if let Extent::Data(v) = &right {
                    self.dirty_bytes += v.len() as u64;
                }
                self.extents.insert(b, right);
            }
        }
    }

    /// Writes `data` at `offset`, growing the file as needed. Returns the change in bytes
    /// held.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<i64> {
        let end = checked_end(offset, data.len() as u64)?;
        if data.is_empty() {
            return Ok(0);
        }
        let before = self.dirty_bytes;
        // Overwrite inside one data extent: copy in place.
        if let Some((&s, Extent::Data(v))) = self.extents.range_mut(..=offset).next_back() {
            if s + v.len() as u64 >= end {
                v[(offset - s) as usize..(end - s) as usize].copy_from_slice(data);
                return Ok(0);
            }
        }
        self.clip(offset, end);
        let extended = match self.extents.range_mut(..offset).next_back() {
            Some((&s, Extent::Data(v))) if s + v.len() as u64 == offset && v.len() < EXTENT_MAX => {
                v.extend_from_slice(data);
                true
            }
            _ => false,
        };
        if !extended {
            self.extents.insert(offset, Extent::Data(data.to_vec()));
        }
        self.dirty_bytes += data.len() as u64;
        self.size = self.size.max(end);
        Ok(self.dirty_bytes as i64 - before as i64)
    }

    /// The bytes held that a write of `len` bytes at `offset` would add: `write` returns
    /// exactly this. Dirty data it overwrites is reused, everything else is new.
    pub fn write_growth(&self, offset: u64, len: u64) -> u64 {
        let end = offset.saturating_add(len);
        let reused: u64 = self
            .overlapping(offset, end)
            .filter(|(_, e)| matches!(e, Extent::Data(_)))
            .map(|(&s, e)| {
                end.min(s.saturating_add(e.len()))
                    .saturating_sub(offset.max(s))
            })
            .sum();
        len.saturating_sub(reused)
    }

    /// Bytes of `offset..end` that hold no data: holes, zero runs and anything past the end
    /// of file (what `fallocate` would have to provide).
    pub fn hole_bytes(&self, offset: u64, end: u64) -> u64 {
        let mut holes = end.saturating_sub(self.size.max(offset));
        let mut pos = offset;
        let stop = end.min(self.size);
        while pos < stop {
            let (next, data) = self.span_at(pos);
            let next = next.clamp(pos + 1, stop);
            if !data {
                holes = holes.saturating_add(next - pos);
            }
            pos = next;
        }
        holes
    }

    /// Sets the size; bytes past a shrink are gone, a grow reads as zeros. Returns the change
    /// in bytes held.
    pub fn truncate(&mut self, size: u64) -> Result<i64> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let before = self.dirty_bytes;
        if size < self.size {
            self.clip(size, self.size);
            self.base_valid = self.base_valid.min(size);
        }
        self.size = size;
        Ok(self.dirty_bytes as i64 - before as i64)
    }

    /// Zeros `offset..offset+len` within the file without changing its size. Returns the
    /// change in bytes held.
    pub fn punch_hole(&mut self, offset: u64, len: u64) -> i64 {
        let before = self.dirty_bytes;
        let end = offset.saturating_add(len).min(self.size);
        if offset < end {
            self.clip(offset, end);
            self.extents.insert(offset, Extent::Zeros(end - offset));
        }
        self.dirty_bytes as i64 - before as i64
    }

    /// The run that holds byte `pos` (< size): its end, and whether it is data (or zeros).
    fn span_at(&self, pos: u64) -> (u64, bool) {
        if let Some((&s, e)) = self.extents.range(..=pos).next_back() {
            if s + e.len() > pos {
                return (s + e.len(), matches!(e, Extent::Data(_)));
            }
        }
        let next = self
            .extents
            .range(pos..)
            .next()
            .map_or(self.size, |(&s, _)| s)
            .min(self.size);
        let base_end = self.base_valid.min(self.base.size());
        if pos >= base_end {
            return (next, false);
        }
        let Some(i) = self.base.index_at(pos) else {
            return (next, false);
        };
        let p = &self.base.pieces()[i];
        let end = p.end().min(base_end).min(next);
        (end, matches!(p.data, PieceData::Chunk(_)))
    }

    /// The first offset at or after `offset` that holds data (`SEEK_DATA`).
    pub fn seek_data(&self, offset: u64) -> Result<u64> {
        let mut pos = offset;
        while pos < self.size {
            let (end, data) = self.span_at(pos);
            if data {
                return Ok(pos);
            }
            pos = end;
        }
        Err(Errno::ENXIO)
    }

    /// The first offset at or after `offset` inside a hole (`SEEK_HOLE`); the end of the
    /// file counts as one.
    pub fn seek_hole(&self, offset: u64) -> Result<u64> {
        if offset >= self.size {
            return Err(Errno::ENXIO);
        }
        let mut pos = offset;
        while pos < self.size {
            let (end, data) = self.span_at(pos);
            if !data {
                return Ok(pos);
            }
            pos = end;
        }
        Ok(self.size)
    }

    /// How far zeros are known to run from `pos` without reading any byte.
    fn known_zeros(&self, pos: u64) -> u64 {
        let mut end = pos;
        while end < self.size {
            let (next, data) = self.span_at(end);
            if data {
                break;
            }
            end = next;
        }
        end - pos
    }

    /// Folds the changes into a new committed recipe. `None` when nothing changed.
    pub fn commit(&mut self, chunker: &Chunker, store: &dyn ContentStore) -> Option<Committed> {
        let prepared = self.prepare_commit(chunker, store)?;
        self.install(prepared)
    }

    /// The first half of a commit: chunks the changes and stores new chunks, but leaves this
    /// content as it was, so the caller can still decide against it (for lack of space) by
    /// dropping the result, which frees the chunks only it held. `None` when nothing
    /// changed since the last commit.
    pub fn prepare_commit(&self, chunker: &Chunker, store: &dyn ContentStore) -> Option<Prepared> {
        if !self.is_dirty() {
            return None;
        }
        let old = self.base.clone();
        let old_size = old.size();
        // The changed range [first, last): dirty extents, truncated base bytes, a new end.
        let mut first = self.extents.keys().next().copied().unwrap_or(u64::MAX);
        let mut last = self
            .extents
            .iter()
            .next_back()
            .map_or(0, |(&s, e)| s + e.len());
        if self.base_valid < old_size {
            first = first.min(self.base_valid);
            last = last.max(old_size);
        }
        if self.size != old_size {
            first = first.min(self.size.min(old_size));
            last = last.max(self.size.max(old_size));
        }
        // Start at the old chunk boundary before the first change. FastCDC decides a cut by
        // the byte at the cut too, so a boundary right at the first change may move: start
        // from the chunk holding the byte before it. The last old piece ends at the old end
        // of file, not at a content-defined cut, so it is redone.
        let zero_cut = chunker.zero_cut() as u64;
        let probe = first.saturating_sub(1).min(old_size.saturating_sub(1));
        let (keep, start) = match old.index_at(probe) {
            None => (0, 0),
            Some(i) => {
                let p = &old.pieces()[i];
                match p.data {
                    PieceData::Zeros if probe < p.end() => {
                        let at = p.start + (probe - p.start) / zero_cut * zero_cut;
                        (i, at)
                    }
                    _ => (i, p.start),
                }
            }
        };
        let mut pieces: Vec<Piece> = old.pieces()[..keep].to_vec();
        if start > old.pieces().get(keep).map_or(start, |p| p.start) {
            // Part of a zero run before the first change stays.
            let p = &old.pieces()[keep];
            push_zeros(&mut pieces, p.start, start - p.start);
        }
        let mut pos = start;
        let mut new_bytes = 0u64;
        let mut chunked_bytes = 0u64;
        let end = self.size;
        while pos < end {
            if pos >= last && pos < old_size {
                if let Some(rest) = old_pieces_from(&old, pos, zero_cut) {
                    let mut rest = rest.into_iter();
                    if let Some(first) = rest.next() {
                        match first.data {
                            PieceData::Zeros => push_zeros(&mut pieces, first.start, first.len),
                            _ => pieces.push(first),
                        }
                    }
                    pieces.extend(rest);
                    break;
                }
            }
            let zeros = self.known_zeros(pos);
            if zeros >= zero_cut {
                // Whole zero chunks; a run that reaches the end of file is taken whole. A cut
                // FastCDC finds inside zeros (zero_cut < max) also looks at the byte after
                // it, which must be a known zero too.
                let n = if pos + zeros == end {
                    zeros
                } else if zero_cut < chunker.max as u64 {
                    (zeros - 1) / zero_cut * zero_cut
                } else {
                    zeros / zero_cut * zero_cut
                };
                if n > 0 {
                    push_zeros(&mut pieces, pos, n);
                    pos += n;
                    continue;
                }
            }
            let window = self.read(pos, (chunker.max as u64).min(end - pos) as usize);
            let n = chunker.cut(&window);
            let chunk = &window[..n];
            chunked_bytes += n as u64;
            if chunk.iter().all(|&b| b == 0) {
                push_zeros(&mut pieces, pos, n as u64);
            } else {
                let Put { chunk: stored, new } = store.put(chunk);
                if new {
                    new_bytes += n as u64;
                }
                pieces.push(Piece {
                    start: pos,
                    len: n as u64,
                    data: PieceData::Chunk(stored),
                });
            }
            pos += n as u64;
        }
        let recipe = Recipe::new(pieces);
        let recipe = (recipe != *old).then(|| Arc::new(recipe));
        Some(Prepared {
            recipe,
            new_bytes,
            chunked_bytes,
        })
    }

    /// The second half of a commit: the prepared recipe becomes the committed content and
    /// the dirty extents are let go. Returns what was committed, `None` when the content is
    /// the same as before.
    pub fn install(&mut self, prepared: Prepared) -> Option<Committed> {
        self.extents.clear();
        self.dirty_bytes = 0;
        let Some(recipe) = prepared.recipe else {
            // The same bytes as the committed recipe: all of it is valid again.
            self.base_valid = self.base.size();
            return None;
        };
        self.base_valid = recipe.size();
        self.base = recipe.clone();
        Some(Committed {
            recipe,
            new_bytes: prepared.new_bytes,
            chunked_bytes: prepared.chunked_bytes,
        })
    }
}

/// Appends `len` zeros at `start`, merged into a zero run before it.
fn push_zeros(pieces: &mut Vec<Piece>, start: u64, len: u64) {
    if len == 0 {
        return;
    }
    if let Some(last) = pieces.last_mut() {
        if last.data == PieceData::Zeros && last.end() == start {
            last.len += len;
            return;
        }
    }
    pieces.push(Piece {
        start,
        len,
        data: PieceData::Zeros,
    });
}

/// The old pieces from `pos` to the end, if `pos` is an old chunk boundary.
fn old_pieces_from(old: &Recipe, pos: u64, zero_cut: u64) -> Option<Vec<Piece>> {
    let i = old.index_at(pos)?;
    let p = &old.pieces()[i];
    let mut out = Vec::with_capacity(old.pieces().len() - i);
    if p.start == pos {
        out.push(p.clone());
    } else if p.data == PieceData::Zeros && (pos - p.start) % zero_cut == 0 {
        out.push(Piece {
            start: pos,
            len: p.end() - pos,
            data: PieceData::Zeros,
        });
    } else {
        return None;
    }
    out.extend(old.pieces()[i + 1..].iter().cloned());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testdata::noise;

    #[test]
    fn holes_read_as_zeros_and_commit_costs_nothing_for_them() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let mut c = FileContent::default();
        c.write(1 << 30, b"abc").unwrap();
        let all = c.read((1 << 30) - 5, 100);
        assert_eq!(&all, &[0, 0, 0, 0, 0, b'a', b'b', b'c']);
        let done = c.commit(&chunker, &*store).unwrap();
        assert!(
            done.chunked_bytes < 200_000,
            "chunked {}",
            done.chunked_bytes
        );
        assert_eq!(store.stats().stored_bytes, done.recipe.data_bytes());
        assert_eq!(c.read((1 << 30) - 5, 100), all);
    }

    #[test]
    fn truncate_drops_bytes_and_regrow_reads_zeros() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let mut c = FileContent::default();
        c.write(0, &vec![7u8; 200_000]).unwrap();
        c.commit(&chunker, &*store);
        c.truncate(10).unwrap();
        c.truncate(100_000).unwrap();
        let all = c.read(0, usize::MAX);
        assert_eq!(&all[..10], &[7u8; 10]);
        assert!(all[10..].iter().all(|&b| b == 0));
        c.commit(&chunker, &*store);
        assert_eq!(c.read(0, usize::MAX), all);
    }

    #[test]
    fn appending_to_a_big_file_rechunks_only_the_tail() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let mut c = FileContent::default();
        let data = noise(8 << 20, 5);
        c.write(0, &data).unwrap();
        c.commit(&chunker, &*store).unwrap();
        c.write(data.len() as u64, &[1u8; 4096]).unwrap();
        let done = c.commit(&chunker, &*store).unwrap();
        assert!(
            done.chunked_bytes <= (chunker.max + 4096) as u64,
            "{}",
            done.chunked_bytes
        );
    }

    #[test]
    fn a_small_edit_reuses_the_other_chunks() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let mut c = FileContent::default();
        let data = noise(4 << 20, 11);
        c.write(0, &data).unwrap();
        let one = c.commit(&chunker, &*store).unwrap();
        c.write(2 << 20, b"edit").unwrap();
        let two = c.commit(&chunker, &*store).unwrap();
        assert!(
            two.chunked_bytes <= 3 * chunker.max as u64,
            "{}",
            two.chunked_bytes
        );
        assert!(two.new_bytes <= 2 * chunker.max as u64);
        let mut whole = FileContent::default();
        let mut edited = data.clone();
        edited[2 << 20..(2 << 20) + 4].copy_from_slice(b"edit");
        whole.write(0, &edited).unwrap();
        let fresh = whole.commit(&chunker, &*store).unwrap();
        assert_eq!(fresh.recipe, two.recipe);
        drop((one, two, fresh));
    }
}
