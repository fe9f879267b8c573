//! A layer of changes over the content below it: dirty extents, the offset from which the
//! bytes below were cut off by a truncate, and the size. The live content writes into its
//! top layer; a commit point freezes that layer (it becomes immutable, shared with the
//! commit worker through an `Arc`) and starts a new one above it.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::fs::error::{Errno, Result};

use super::content::{checked_end, MAX_FILE_SIZE};

/// A dirty extent grows by appends (reallocated, as a `Vec` grows) up to this size; past
/// it, an append starts a buffer of [`STREAM_BUFFER`].
const GROW_MAX: usize = 1 << 20;

/// The room a sequential write's buffers are made with past its first MiB, so that its
/// appends fill them without reallocating. A chunk cut across two buffers is copied, and
/// its bytes in them stay unused while the buffers live on in the chunks cut from them
/// (`store/pinned.rs`): 2.4% of a random write with 1 MiB buffers, 0.6% with these.
const STREAM_BUFFER: usize = 4 << 20;

#[derive(Clone, Debug)]
pub(super) enum Extent {
    /// Written bytes, in the live layer.
    Data(Vec<u8>),
    /// Written bytes of a frozen layer: shared, so the chunks a commit cuts from them can
    /// keep them as they are instead of copying them.
    Frozen(Bytes),
    Zeros(u64),
}

impl Extent {
    pub(super) fn len(&self) -> u64 {
        match self {
            Extent::Data(v) => v.len() as u64,
            Extent::Frozen(b) => b.len() as u64,
            Extent::Zeros(n) => *n,
        }
    }

    /// The written bytes, or `None` for zeros.
    pub(super) fn data(&self) -> Option<&[u8]> {
        match self {
            Extent::Data(v) => Some(v),
            Extent::Frozen(b) => Some(b),
            Extent::Zeros(_) => None,
        }
    }

    /// The part from `from` (relative) to the end.
    fn tail(&self, from: u64) -> Extent {
        match self {
            Extent::Data(v) => Extent::Data(v[from as usize..].to_vec()),
            Extent::Frozen(b) => Extent::Frozen(b.slice(from as usize..)),
            Extent::Zeros(n) => Extent::Zeros(n - from),
        }
    }

    fn truncate(&mut self, len: u64) {
        match self {
            Extent::Data(v) => v.truncate(len as usize),
            Extent::Frozen(b) => b.truncate(len as usize),
            Extent::Zeros(n) => *n = len,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Layer {
    /// Changes, by start offset; never overlapping.
    pub(super) extents: BTreeMap<u64, Extent>,
    /// Bytes below this layer at or past this offset were cut off by a truncate and read
    /// as zeros (`u64::MAX`: nothing was cut).
    pub(super) cut: u64,
    /// The file size with this layer applied.
    pub(super) size: u64,
    /// Bytes held by `Data` extents.
    pub(super) dirty_bytes: u64,
}

impl Layer {
    /// An empty layer over content of `size` bytes.
    pub(super) fn over(size: u64) -> Layer {
        Layer {
            extents: BTreeMap::new(),
            cut: u64::MAX,
            size,
            dirty_bytes: 0,
        }
    }

    /// This layer made immutable: its written bytes become shared, without a copy. A buffer
    /// may live on in the chunks cut from it, so the room it had for growing is given back
    /// first (malloc shrinks in place).
    pub(super) fn frozen(mut self) -> Layer {
        for e in self.extents.values_mut() {
            if let Extent::Data(v) = e {
                let mut bytes = std::mem::take(v);
                bytes.shrink_to_fit();
                *e = Extent::Frozen(Bytes::from(bytes));
            }
        }
        self
    }

    /// Whether this layer changes anything of content of `below` bytes.
    pub(super) fn changes(&self, below: u64) -> bool {
        !self.extents.is_empty() || self.size != below || self.cut < below
    }

    /// The first bytes of data this layer holds (names a commit for the test panic points).
    pub(crate) fn first_data(&self) -> &[u8] {
        self.extents.values().find_map(Extent::data).unwrap_or(&[])
    }

    /// Bytes of uncommitted data this layer holds.
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty_bytes
    }

    /// Extents that overlap `a..b`, in order.
    pub(super) fn overlapping(&self, a: u64, b: u64) -> impl Iterator<Item = (&u64, &Extent)> {
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
                if e.data().is_some() {
                    self.dirty_bytes -= cut;
                }
                if let Some(right) = right {
                    if let Some(v) = right.data() {
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
            if let Some(v) = e.data() {
                self.dirty_bytes -= v.len() as u64;
            }
            if s + e.len() > b {
                let right = e.tail(b - s);
                if let Some(v) = right.data() {
                    self.dirty_bytes += v.len() as u64;
                }
                self.extents.insert(b, right);
            }
        }
    }

    /// Writes `data` at `offset`, growing the file as needed. Returns the change in bytes
    /// held.
    pub(super) fn write(&mut self, offset: u64, data: &[u8]) -> Result<i64> {
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
        // An append fills the extent before it if that has room, or grows a small one; a
        // big one full, the write is sequential: its next buffer is a big one.
        let mut stream = false;
        let appended = match self.extents.range_mut(..offset).next_back() {
            Some((&s, Extent::Data(v))) if s + v.len() as u64 == offset => {
                if v.capacity() - v.len() >= data.len() {
                    crate::memory::append_populated(v, data);
                } else if v.len() < GROW_MAX {
                    v.extend_from_slice(data);
                } else {
                    stream = true;
                }
                !stream
            }
            _ => false,
        };
        if !appended {
            let room = if stream {
                STREAM_BUFFER.max(data.len())
            } else {
                data.len()
            };
            let mut copy = Vec::with_capacity(room);
            crate::memory::append_populated(&mut copy, data);
            self.extents.insert(offset, Extent::Data(copy));
        }
        self.dirty_bytes += data.len() as u64;
        self.size = self.size.max(end);
        Ok(self.dirty_bytes as i64 - before as i64)
    }

    /// The bytes held that a write of `len` bytes at `offset` would add (what `write`
    /// returns): dirty data of this layer it overwrites is reused, everything else is new.
    pub(super) fn write_growth(&self, offset: u64, len: u64) -> u64 {
        let end = offset.saturating_add(len);
        let reused: u64 = self
            .overlapping(offset, end)
            .filter(|(_, e)| e.data().is_some())
            .map(|(&s, e)| {
                end.min(s.saturating_add(e.len()))
                    .saturating_sub(offset.max(s))
            })
            .sum();
        len.saturating_sub(reused)
    }

    /// Sets the size; bytes past a shrink are gone, a grow reads as zeros. Returns the change
    /// in bytes held.
    pub(super) fn truncate(&mut self, size: u64) -> Result<i64> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let before = self.dirty_bytes;
        if size < self.size {
            self.clip(size, self.size);
            self.cut = self.cut.min(size);
        }
        self.size = size;
        Ok(self.dirty_bytes as i64 - before as i64)
    }

    /// Zeros `offset..offset+len` within the file without changing its size. Returns the
    /// change in bytes held.
    pub(super) fn punch_hole(&mut self, offset: u64, len: u64) -> i64 {
        let before = self.dirty_bytes;
        let end = offset.saturating_add(len).min(self.size);
        if offset < end {
            self.clip(offset, end);
            self.extents.insert(offset, Extent::Zeros(end - offset));
        }
        self.dirty_bytes as i64 - before as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent_lens(layer: &Layer) -> Vec<u64> {
        layer.extents.values().map(Extent::len).collect()
    }

    #[test]
    fn a_sequential_write_fills_big_buffers_and_small_appends_grow_one() {
        let mut layer = Layer::over(0);
        let mib = vec![7u8; 1 << 20];
        for i in 0..10u64 {
            layer.write(i << 20, &mib).unwrap();
        }
        // The first MiB alone, then buffers of 4 MiB filled by appends.
        assert_eq!(extent_lens(&layer), [1 << 20, 4 << 20, 4 << 20, 1 << 20]);
        assert_eq!(layer.dirty_bytes(), 10 << 20);
        let frozen = layer.frozen();
        assert_eq!(extent_lens(&frozen), [1 << 20, 4 << 20, 4 << 20, 1 << 20]);

        // Small appends grow one extent up to 1 MiB; past it they fill a big buffer.
        let mut small = Layer::over(0);
        for i in 0..300u64 {
            small.write(i * 4096, &[1u8; 4096]).unwrap();
        }
        assert_eq!(extent_lens(&small), [256 * 4096, 44 * 4096]);
    }
}
