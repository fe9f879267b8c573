//! The bytes of a regular file: the last committed recipe under a stack of layers of
//! changes (`layer.rs`).
//!
//! Writers change only the top layer, the live one (what POSIX readers see at once). A
//! commit point either folds every layer into a new immutable recipe at once (a small
//! change, inline) or freezes the live layer: it becomes an immutable pending layer shared
//! with a commit worker, and a new empty live layer starts above it. Reads always see the
//! recipe with every pending layer and the live one applied, in order. The worker builds a
//! new recipe from the recipe and the frozen layers alone (no lock held: they cannot
//! change), and installs it with [`FileContent::install_layers`], which drops those layers
//! from the bottom of the stack; the layers above were made over exactly those bytes.
//!
//! A commit re-chunks only from the chunk that holds the first changed byte until a new cut
//! lands on an old boundary past the last changed byte, reusing every other chunk. Runs of
//! zeros (holes, punched ranges, zero-filled chunks) are zero pieces that cost no memory and
//! are chunked without being scanned, so a recipe is the same whether a content was written
//! in one go or through any sequence of edits. The chunks of one commit are hashed and
//! stored in parallel (rayon), in batches cut sequentially, so boundaries do not change.
//!
//! A worker's commit cuts chunks from frozen layers, whose write buffers are shared
//! (`Bytes`): a chunk that lies in one buffer is handed to the store as a slice of it, and
//! the in-memory store keeps it so when the buffer's new chunks use nearly all of it
//! (`store/pinned.rs`); only chunks cut across two buffers are copied. A batch ends where a
//! buffer does, so the store sees all of a buffer's chunks at once.

use std::sync::Arc;

use bytes::Bytes;

use crate::fs::error::store_failed;
use crate::fs::error::{Errno, Result};
use crate::store::recipe::{Piece, PieceData, Recipe, RecipeRef};
use crate::store::{Chunker, ContentStore, Cut, HeldTwice, Put};

use super::layer::{Extent, Layer};
use super::ReadBytes;

/// The largest file size, as on Linux (`MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Chunks cut before they are hashed together, and the bytes they may hold at most.
const HASH_BATCH: usize = 256;
const HASH_BATCH_BYTES: usize = 16 << 20;

/// The most a commit reads ahead of its cuts.
const READ_AHEAD_MAX: usize = 4 << 20;

/// The end of `offset..offset+len`, or EFBIG past the largest file size.
pub fn checked_end(offset: u64, len: u64) -> Result<u64> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_FILE_SIZE => Ok(end),
        _ => Err(Errno::EFBIG),
    }
}

/// A frozen layer of changes waiting for its commit (see the module doc).
pub type PendingLayer = Arc<Layer>;

#[derive(Debug, Clone)]
pub struct FileContent {
    /// The last committed content.
    base: RecipeRef,
    /// Frozen layers whose commit is not installed yet, oldest (lowest) first.
    pending: Vec<PendingLayer>,
    /// The layer writes go to.
    live: Layer,
    /// Set while `base` is a checkpoint, not a version: the bytes a writer had written so
    /// far, chunked before its commit point so that they need not be held twice (see
    /// [`FileContent::install_checkpoint`]). Holds the bytes the checkpoints added to the
    /// store, which the next version reports as its own.
    checkpoint: Option<u64>,
}

impl Default for FileContent {
    fn default() -> Self {
        FileContent::from_recipe(RecipeRef::default())
    }
}

/// A commit chunked and stored but not yet installed (see [`FileContent::prepare_commit`]).
#[derive(Debug)]
pub struct Prepared {
    /// The frozen write buffers its chunks keep, counted once against the memory cap until
    /// it is installed or dropped. (First, so that it goes before the chunks do.)
    pub held_twice: HeldTwice,
    /// The new recipe; `None` when it equals the committed one.
    pub recipe: Option<RecipeRef>,
    pub new_bytes: u64,
    pub chunked_bytes: u64,
}

impl Prepared {
    /// A commit that changes no bytes.
    pub fn unchanged() -> Prepared {
        Prepared {
            recipe: None,
            new_bytes: 0,
            chunked_bytes: 0,
            held_twice: HeldTwice::default(),
        }
    }
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
            live: Layer::over(recipe.size()),
            base: recipe,
            pending: Vec::new(),
            checkpoint: None,
        }
    }

    fn view(&self) -> View<'_> {
        View {
            base: &self.base,
            below: &self.pending,
            top: Some(&self.live),
        }
    }

    pub fn size(&self) -> u64 {
        self.live.size
    }

    /// The last committed recipe: the newest version's, or a checkpoint's after it.
    pub fn base(&self) -> &RecipeRef {
        &self.base
    }

    /// Whether anything changed since the last installed commit.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty() || self.live_changed()
    }

    /// Whether the live layer changes anything (something to commit at a commit point).
    pub fn live_changed(&self) -> bool {
        let below = self.pending.last().map_or(self.base.size(), |l| l.size);
        self.live.changes(below)
    }

    /// Bytes of uncommitted data this content holds, pending layers included.
    pub fn dirty_bytes(&self) -> u64 {
        self.pending.iter().map(|l| l.dirty_bytes()).sum::<u64>() + self.live.dirty_bytes()
    }

    /// Bytes of data written since the last commit point.
    pub fn live_dirty_bytes(&self) -> u64 {
        self.live.dirty_bytes()
    }

    /// Bytes that are not holes (for `st_blocks`): committed chunks plus dirty data.
    pub fn allocated(&self) -> u64 {
        self.base.data_bytes().min(self.view().base_valid()) + self.dirty_bytes()
    }

    /// Up to `len` bytes from `offset`, fewer at the end of the file. EIO when the store
    /// cannot serve a chunk.
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.view().read(offset, len)
    }

    /// Like `read`, answered from the chunks' own bytes when no uncommitted change touches
    /// the range (see [`ReadBytes`]).
    pub fn read_bytes(&self, offset: u64, len: usize) -> Result<ReadBytes> {
        let view = self.view();
        let end = offset.saturating_add(len as u64).min(view.size());
        let unchanged = || {
            end <= view.base_valid()
                && view
                    .layers()
                    .all(|l| l.overlapping(offset, end).next().is_none())
        };
        if offset < end && unchanged() {
            return ReadBytes::of_recipe(&self.base, offset, end - offset);
        }
        view.read(offset, len).map(ReadBytes::from)
    }

    /// Writes `data` at `offset`, growing the file as needed. Returns the change in bytes
    /// held.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<i64> {
        self.live.write(offset, data)
    }

    /// The bytes held that a write of `len` bytes at `offset` would add: `write` returns
    /// exactly this. Dirty data it overwrites is reused, everything else is new.
    pub fn write_growth(&self, offset: u64, len: u64) -> u64 {
        self.live.write_growth(offset, len)
    }

    /// Bytes of `offset..end` that hold no data: holes, zero runs and anything past the end
    /// of file (what `fallocate` would have to provide).
    pub fn hole_bytes(&self, offset: u64, end: u64) -> u64 {
        self.view().hole_bytes(offset, end)
    }

    /// Sets the size; bytes past a shrink are gone, a grow reads as zeros. Returns the change
    /// in bytes held.
    pub fn truncate(&mut self, size: u64) -> Result<i64> {
        self.live.truncate(size)
    }

    /// Zeros `offset..offset+len` within the file without changing its size. Returns the
    /// change in bytes held.
    pub fn punch_hole(&mut self, offset: u64, len: u64) -> i64 {
        self.live.punch_hole(offset, len)
    }

    /// The first offset at or after `offset` that holds data (`SEEK_DATA`).
    pub fn seek_data(&self, offset: u64) -> Result<u64> {
        self.view().seek_data(offset)
    }

    /// The first offset at or after `offset` inside a hole (`SEEK_HOLE`); the end of the
    /// file counts as one.
    pub fn seek_hole(&self, offset: u64) -> Result<u64> {
        self.view().seek_hole(offset)
    }

    /// Folds the changes into a new committed recipe. `None` when nothing changed (or the
    /// store could not serve the old chunks the commit reads; then nothing changes).
    pub fn commit(&mut self, chunker: &Chunker, store: &dyn ContentStore) -> Option<Committed> {
        let prepared = self.prepare_commit(chunker, store).ok().flatten()?;
        self.install(prepared)
    }

    /// The first half of an inline commit of every layer: chunks the changes and stores new
    /// chunks, but leaves this content as it was, so the caller can still decide against it
    /// (for lack of space) by dropping the result, which frees the chunks only it held.
    /// `None` when nothing changed since the last commit; EIO when the store cannot serve
    /// the old chunks around the change.
    pub fn prepare_commit(
        &self,
        chunker: &Chunker,
        store: &dyn ContentStore,
    ) -> Result<Option<Prepared>> {
        self.view().prepare(chunker, store)
    }

    /// The second half of an inline commit: the prepared recipe becomes the committed content
    /// and every layer is let go. Returns what was committed, `None` when the content is the
    /// same as before.
    pub fn install(&mut self, prepared: Prepared) -> Option<Committed> {
        self.pending.clear();
        self.live = Layer::over(self.live.size);
        let prepared = self.as_version(Some(prepared))?;
        let recipe = prepared.recipe?;
        self.base = recipe.clone();
        Some(Committed {
            recipe,
            new_bytes: prepared.new_bytes,
            chunked_bytes: prepared.chunked_bytes,
        })
    }

    /// The recipe a commit point makes a version of: `prepared`'s (`None`, or a `None`
    /// recipe, when nothing changed since `base`), except that after a checkpoint an
    /// unchanged content is still new as a version: the checkpoint's recipe. `None`: no
    /// version.
    pub fn version_recipe(&self, prepared: Option<&Prepared>) -> Option<RecipeRef> {
        prepared
            .and_then(|p| p.recipe.clone())
            .or_else(|| self.is_checkpointed().then(|| self.base.clone()))
    }

    /// What a commit point makes a version of: `prepared`, with the recipe
    /// [`FileContent::version_recipe`] gives and, after a checkpoint, the bytes the
    /// checkpoints stored counted as the version's. Clears the checkpoint: its caller
    /// installs a version.
    pub fn as_version(&mut self, prepared: Option<Prepared>) -> Option<Prepared> {
        if !self.is_checkpointed() {
            return prepared;
        }
        let recipe = self.version_recipe(prepared.as_ref());
        let mut p = prepared.unwrap_or_else(Prepared::unchanged);
        p.recipe = recipe;
        p.new_bytes += self.checkpoint.take().unwrap_or(0);
        Some(p)
    }

    /// Takes `bytes` off what the checkpoints stored: chunks only a checkpoint held, gone
    /// with it.
    pub fn forget_checkpoint_bytes(&mut self, bytes: u64) {
        if let Some(stored) = &mut self.checkpoint {
            *stored = stored.saturating_sub(bytes);
        }
    }

    /// Whether `base` is a checkpoint that no version holds yet.
    pub fn is_checkpointed(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// Installs a worker's checkpoint of the pending layers up to and including `through`:
    /// like [`FileContent::install_layers`], but its recipe is no version, only the bytes
    /// written so far in chunks; the next commit point makes the version. A checkpoint of
    /// the same bytes as `base` (`None` recipe) leaves `base` as it was, a version or not.
    /// Returns the dirty bytes released.
    pub fn install_checkpoint(
        &mut self,
        through: &PendingLayer,
        prepared: Prepared,
    ) -> Option<u64> {
        let changed = prepared.recipe.is_some();
        let released = self.install_layers(through, prepared.recipe)?;
        if changed {
            *self.checkpoint.get_or_insert(0) += prepared.new_bytes;
        }
        Some(released)
    }

    /// A commit point handed to a worker: the live layer becomes the newest pending layer
    /// (even if it changes nothing, so that the commit covers layers left pending by a
    /// commit that did not fit), and writes go to a new layer above it.
    pub fn freeze(&mut self) -> PendingLayer {
        let size = self.live.size;
        let live = std::mem::replace(&mut self.live, Layer::over(size));
        let layer = Arc::new(live.frozen());
        self.pending.push(layer.clone());
        layer
    }

    /// The pending layers, oldest first.
    pub fn pending(&self) -> &[PendingLayer] {
        &self.pending
    }

    /// The pending layers up to and including `through`, or `None` if it is not pending
    /// any more (the file was freed or committed inline meanwhile).
    pub fn pending_through(&self, through: &PendingLayer) -> Option<&[PendingLayer]> {
        let i = self.pending.iter().position(|l| Arc::ptr_eq(l, through))?;
        Some(&self.pending[..=i])
    }

    /// Installs a worker's commit of the pending layers up to and including `through`: they
    /// are let go and `recipe` (`None`: the same bytes as the committed recipe) becomes the
    /// committed content. Returns the dirty bytes released, or `None` (and changes nothing)
    /// if `through` is not pending.
    pub fn install_layers(
        &mut self,
        through: &PendingLayer,
        recipe: Option<RecipeRef>,
    ) -> Option<u64> {
        let n = self.pending_through(through)?.len();
        let released = self.pending.drain(..n).map(|l| l.dirty_bytes()).sum();
        if let Some(recipe) = recipe {
            self.base = recipe;
        }
        Some(released)
    }
}

/// Chunks and stores the content `layers` (frozen, oldest first) make of `base`, for a
/// commit worker that holds no lock. `None` when the layers change nothing; EIO when the
/// store cannot serve the old chunks around the change.
pub fn prepare_layers(
    base: &RecipeRef,
    layers: &[PendingLayer],
    chunker: &Chunker,
    store: &dyn ContentStore,
) -> Result<Option<Prepared>> {
    View {
        base,
        below: layers,
        top: None,
    }
    .prepare(chunker, store)
}

/// A recipe with layers applied over it, bottom first: the content a reader or a commit
/// sees.
#[derive(Clone, Copy)]
struct View<'a> {
    base: &'a RecipeRef,
    below: &'a [PendingLayer],
    top: Option<&'a Layer>,
}

impl<'a> View<'a> {
    fn layers(&self) -> impl DoubleEndedIterator<Item = &'a Layer> + Clone {
        self.below.iter().map(|l| &**l).chain(self.top)
    }

    fn size(&self) -> u64 {
        self.layers()
            .next_back()
            .map_or(self.base.size(), |l| l.size)
    }

    /// The bytes of `offset..end` when one written extent holds all of them and no newer
    /// layer touches them, as they are: a commit cuts its chunks from them without copying
    /// them out first. A sequential write leaves its bytes in extents of 4 MiB, so most of
    /// its cuts find their bytes whole in one. With them comes the frozen extent's shared
    /// buffer (`None` in the live layer), which the chunks cut from them can keep.
    fn in_one_extent(&self, offset: u64, end: u64) -> Option<(&'a [u8], Option<&'a Bytes>)> {
        for layer in self.layers().rev() {
            let mut hits = layer.overlapping(offset, end);
            match (hits.next(), hits.next()) {
                (None, _) if layer.cut >= end => continue,
                (Some((&s, e)), None) if s <= offset && s + e.len() >= end => {
                    let range = (offset - s) as usize..(end - s) as usize;
                    return match e {
                        Extent::Data(v) => Some((&v[range], None)),
                        Extent::Frozen(b) => Some((&b[range], Some(b))),
                        Extent::Zeros(_) => None,
                    };
                }
                _ => return None,
            }
        }
        None
    }

    /// The chunk to cut at `pos` (of at most `want` bytes) when one written extent holds
    /// it, with the extent's shared buffer as `in_one_extent` gives it. Near an extent's end
    /// the window is only what is left of the extent: a cut inside it is the cut the whole
    /// window would give (a cut depends only on the bytes up to it and the one at it), and
    /// only the chunk cut across into the next extent is copied out.
    fn cut_in_extent(
        &self,
        chunker: &Chunker,
        pos: u64,
        want: usize,
    ) -> Option<(&'a [u8], Option<&'a Bytes>)> {
        let end = pos + want as u64;
        if let Some((window, shared)) = self.in_one_extent(pos, end) {
            return Some((&window[..chunker.cut(window)], shared));
        }
        // The run of written bytes holding `pos` ends before the window would.
        let (short_end, data) = self.span_at(pos);
        if !data || short_end >= end {
            return None;
        }
        let (window, shared) = self.in_one_extent(pos, short_end)?;
        let n = chunker.cut(window);
        // A cut at the window's end may only be where the window stops.
        (n < window.len()).then(|| (&window[..n], shared))
    }

    /// Base bytes at or past this offset read as zeros (cut off by a truncate).
    fn base_valid(&self) -> u64 {
        self.layers()
            .map(|l| l.cut)
            .fold(self.base.size(), u64::min)
    }

    fn is_dirty(&self) -> bool {
        let mut below = self.base.size();
        for l in self.layers() {
            if l.changes(below) {
                return true;
            }
            below = l.size;
        }
        false
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let size = self.size();
        if offset >= size {
            return Ok(Vec::new());
        }
        let end = offset.saturating_add(len as u64).min(size);
        let mut out = vec![0u8; (end - offset) as usize];
        let base_end = end.min(self.base.size());
        if offset < base_end {
            self.base
                .read_into(offset, &mut out[..(base_end - offset) as usize])
                .map_err(store_failed)?;
        }
        for layer in self.layers() {
            if layer.cut < end {
                out[(layer.cut.max(offset) - offset) as usize..].fill(0);
            }
            for (&s, e) in layer.overlapping(offset, end) {
                let from = offset.max(s);
                let to = end.min(s + e.len());
                if from >= to {
                    continue;
                }
                let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
                match e.data() {
                    Some(v) => dst.copy_from_slice(&v[(from - s) as usize..(to - s) as usize]),
                    None => dst.fill(0),
                }
            }
        }
        Ok(out)
    }

    /// The run that holds byte `pos` (< size): its end, and whether it is data (or zeros).
    fn span_at(&self, pos: u64) -> (u64, bool) {
        let mut limit = self.size();
        for layer in self.layers().rev() {
            if let Some((&s, e)) = layer.extents.range(..=pos).next_back() {
                if s + e.len() > pos {
                    return ((s + e.len()).min(limit), e.data().is_some());
                }
            }
            if let Some((&s, _)) = layer.extents.range(pos..).next() {
                limit = limit.min(s);
            }
            if pos >= layer.cut {
                return (limit, false);
            }
            limit = limit.min(layer.cut);
        }
        if pos >= self.base.size() {
            return (limit, false);
        }
        let Some(i) = self.base.index_at(pos) else {
            return (limit, false);
        };
        let p = &self.base.pieces()[i];
        (p.end().min(limit), matches!(p.data, PieceData::Chunk(_)))
    }

    fn hole_bytes(&self, offset: u64, end: u64) -> u64 {
        let size = self.size();
        let mut holes = end.saturating_sub(size.max(offset));
        let mut pos = offset;
        let stop = end.min(size);
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

    fn seek_data(&self, offset: u64) -> Result<u64> {
        let size = self.size();
        let mut pos = offset;
        while pos < size {
            let (end, data) = self.span_at(pos);
            if data {
                return Ok(pos);
            }
            pos = end.max(pos + 1);
        }
        Err(Errno::ENXIO)
    }

    fn seek_hole(&self, offset: u64) -> Result<u64> {
        let size = self.size();
        if offset >= size {
            return Err(Errno::ENXIO);
        }
        let mut pos = offset;
        while pos < size {
            let (end, data) = self.span_at(pos);
            if !data {
                return Ok(pos);
            }
            pos = end.max(pos + 1);
        }
        Ok(size)
    }

    /// How far zeros are known to run from `pos` without reading any byte.
    fn known_zeros(&self, pos: u64) -> u64 {
        let size = self.size();
        let mut end = pos;
        while end < size {
            let (next, data) = self.span_at(end);
            if data {
                break;
            }
            end = next.max(end + 1);
        }
        end.min(size) - pos
    }

    fn prepare(&self, chunker: &Chunker, store: &dyn ContentStore) -> Result<Option<Prepared>> {
        if !self.is_dirty() {
            return Ok(None);
        }
        // A scope for the thread that hashes one batch while the next is cut (only a commit
        // of more than one batch starts it).
        std::thread::scope(|scope| self.prepare_in(chunker, store, scope).map(Some))
    }

    fn prepare_in<'scope, 'env>(
        &self,
        chunker: &Chunker,
        store: &'env dyn ContentStore,
        scope: &'scope std::thread::Scope<'scope, 'env>,
    ) -> Result<Prepared> {
        let old = self.base.clone();
        let old_size = old.size();
        // The changed range [first, last): dirty extents, truncated base bytes, a new end.
        let mut first = u64::MAX;
        let mut last = 0;
        for layer in self.layers() {
            if let Some(&s) = layer.extents.keys().next() {
                first = first.min(s);
            }
            if let Some((&s, e)) = layer.extents.iter().next_back() {
                last = last.max(s + e.len());
            }
            if layer.cut < old_size {
                first = first.min(layer.cut);
                last = last.max(old_size);
            }
        }
        let size = self.size();
        if size != old_size {
            first = first.min(size.min(old_size));
            last = last.max(size.max(old_size));
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
        let mut out = Pieces {
            pieces: old.pieces()[..keep].to_vec(),
            batch: Vec::new(),
            batch_bytes: 0,
            new_bytes: 0,
            held_twice: HeldTwice::default(),
            store,
            scope,
            in_flight: None,
        };
        if start > old.pieces().get(keep).map_or(start, |p| p.start) {
            // Part of a zero run before the first change stays.
            let p = &old.pieces()[keep];
            out.zeros(p.start, start - p.start);
        }
        let mut pos = start;
        let mut chunked_bytes = 0u64;
        let mut ahead = ReadAhead {
            start: 0,
            bytes: Vec::new(),
            next_len: 0,
        };
        let end = size;
        while pos < end {
            if pos >= last && pos < old_size {
                if let Some(rest) = old_pieces_from(&old, pos, zero_cut) {
                    out.flush();
                    let mut rest = rest.into_iter();
                    if let Some(first) = rest.next() {
                        match first.data {
                            PieceData::Zeros => push_zeros(&mut out.pieces, first.start, first.len),
                            _ => out.pieces.push(first),
                        }
                    }
                    out.pieces.extend(rest);
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
                    out.zeros(pos, n);
                    pos += n;
                    continue;
                }
            }
            let want = (chunker.max as u64).min(end - pos) as usize;
            let (chunk, shared) = match self.cut_in_extent(chunker, pos, want) {
                Some(found) => {
                    // The next read-ahead, at the end of this extent, starts small again.
                    ahead.next_len = 0;
                    found
                }
                None => {
                    let ahead_end = ahead.start + ahead.bytes.len() as u64;
                    if pos < ahead.start || pos + want as u64 > ahead_end {
                        ahead.refill(self, pos, want.max(chunker.max), end)?;
                    }
                    let at = (pos - ahead.start) as usize;
                    let window = &ahead.bytes[at..at + want];
                    (&window[..chunker.cut(window)], None)
                }
            };
            let n = chunk.len();
            chunked_bytes += n as u64;
            if chunk.iter().all(|&b| b == 0) {
                out.zeros(pos, n as u64);
            } else {
                // Kept as a slice of a frozen extent, or copied out of the live layer or
                // the read-ahead.
                let cut = match shared {
                    Some(buffer) => Cut {
                        bytes: buffer.slice_ref(chunk),
                        buffer: Some(buffer.clone()),
                    },
                    None => Cut {
                        bytes: Bytes::copy_from_slice(chunk),
                        buffer: None,
                    },
                };
                out.chunk(pos, cut);
            }
            pos += n as u64;
        }
        out.flush();
        let recipe = Recipe::new(out.pieces);
        let recipe = (recipe != *old).then(|| Arc::new(recipe));
        Ok(Prepared {
            recipe,
            new_bytes: out.new_bytes,
            chunked_bytes,
            held_twice: out.held_twice,
        })
    }
}

/// The bytes a commit cuts chunks from, read ahead of the cuts so that each byte is copied
/// out of the layers once (a window of `max` bytes per cut would copy each about
/// `max / avg` times). It starts small, since most commits stop a few chunks after the
/// change, and doubles up to [`READ_AHEAD_MAX`].
struct ReadAhead {
    start: u64,
    bytes: Vec<u8>,
    next_len: usize,
}

impl ReadAhead {
    /// Reads from `pos` at least `min` bytes (fewer at `end`).
    fn refill(&mut self, view: &View<'_>, pos: u64, min: usize, end: u64) -> Result<()> {
        let least = min.saturating_mul(2);
        self.next_len = self
            .next_len
            .saturating_mul(2)
            .clamp(least, READ_AHEAD_MAX.max(least));
        let len = (self.next_len as u64).min(end - pos) as usize;
        self.start = pos;
        self.bytes = view.read(pos, len)?;
        Ok(())
    }
}

/// A stored chunk of a batch: its offset, length and reference.
type Stored = (u64, u64, Put);

/// The pieces of a recipe being built, with chunks cut but not yet hashed and stored.
struct Pieces<'scope, 'env> {
    /// First, so that it goes before the chunks do.
    held_twice: HeldTwice,
    pieces: Vec<Piece>,
    /// Cut chunks waiting to be hashed, by offset; they come after `in_flight`'s.
    batch: Vec<(u64, Cut)>,
    batch_bytes: usize,
    new_bytes: u64,
    store: &'env dyn ContentStore,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    /// The batch before, being hashed on another thread while this one is cut; its chunks
    /// come right after `pieces`.
    in_flight: Option<std::thread::ScopedJoinHandle<'scope, (Vec<Stored>, HeldTwice)>>,
}

impl Pieces<'_, '_> {
    fn chunk(&mut self, start: u64, cut: Cut) {
        let full = self.batch.len() >= HASH_BATCH || self.batch_bytes >= HASH_BATCH_BYTES;
        // A batch ends where a write buffer does, so the store sees all the chunks of one
        // at once (it shares a buffer only with chunks that use most of it).
        let same_buffer = match (self.batch.last(), &cut.buffer) {
            (Some((_, last)), Some(buffer)) => {
                last.buffer.as_ref().map(|b| b.as_ptr()) == Some(buffer.as_ptr())
            }
            _ => false,
        };
        let overfull =
            self.batch.len() >= 2 * HASH_BATCH || self.batch_bytes >= 2 * HASH_BATCH_BYTES;
        if full && (!same_buffer || overfull) {
            // A big commit: hash this batch while the next one is cut, so the sequential
            // cutting and the hashing run on different cores.
            self.land();
            let batch = std::mem::take(&mut self.batch);
            self.batch_bytes = 0;
            let store = self.store;
            // Named, so that profiles tell it from its worker. A copy of the batch's
            // references stays here: if no thread can be started, it is hashed here.
            let spare = batch.clone();
            let thread = std::thread::Builder::new().name("memfs-batch".into());
            match thread.spawn_scoped(self.scope, move || hash(store, batch)) {
                Ok(hashing) => self.in_flight = Some(hashing),
                Err(_) => {
                    let stored = hash(store, spare);
                    self.push(stored);
                }
            }
        }
        self.batch_bytes += cut.bytes.len();
        self.batch.push((start, cut));
    }

    fn zeros(&mut self, start: u64, len: u64) {
        self.flush();
        push_zeros(&mut self.pieces, start, len);
    }

    /// Takes in the batch being hashed, if any.
    fn land(&mut self) {
        if let Some(hashing) = self.in_flight.take() {
            // A panic there (a bug) goes on here, where the commit is caught.
            let stored = hashing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            self.push(stored);
        }
    }

    /// Hashes and stores every waiting chunk, so that the pieces are complete.
    fn flush(&mut self) {
        self.land();
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.batch_bytes = 0;
            let stored = hash(self.store, batch);
            self.push(stored);
        }
    }

    fn push(&mut self, (stored, held_twice): (Vec<Stored>, HeldTwice)) {
        self.held_twice.absorb(held_twice);
        for (start, len, Put { chunk, new }) in stored {
            if new {
                self.new_bytes += len;
            }
            self.pieces.push(Piece {
                start,
                len,
                data: PieceData::Chunk(chunk),
            });
        }
    }
}

/// Hashes and stores a batch of cut chunks, on every core when there are several (the cuts
/// were made already, so the boundaries are those of a sequential pass).
fn hash(store: &dyn ContentStore, batch: Vec<(u64, Cut)>) -> (Vec<Stored>, HeldTwice) {
    let (starts, cuts): (Vec<u64>, Vec<Cut>) = batch.into_iter().unzip();
    let (puts, held_twice) = store.put_cuts(cuts);
    let stored = starts
        .into_iter()
        .zip(puts)
        .map(|(start, put)| (start, put.chunk.len() as u64, put))
        .collect();
    (stored, held_twice)
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
        let all = c.read((1 << 30) - 5, 100).unwrap();
        assert_eq!(&all, &[0, 0, 0, 0, 0, b'a', b'b', b'c']);
        let done = c.commit(&chunker, &*store).unwrap();
        assert!(
            done.chunked_bytes < 200_000,
            "chunked {}",
            done.chunked_bytes
        );
        assert_eq!(store.stats().stored_bytes, done.recipe.data_bytes());
        assert_eq!(c.read((1 << 30) - 5, 100).unwrap(), all);
    }

    /// `read_bytes` answers exactly what `read` does, from the chunks only where nothing
    /// uncommitted touches the range.
    #[test]
    fn read_bytes_shares_only_unchanged_ranges() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let mut c = FileContent::default();
        c.write(0, &noise(3 << 20, 3)).unwrap();
        c.write(5 << 20, b"after a hole").unwrap();
        c.commit(&chunker, &*store).unwrap();
        let check = |c: &FileContent, offset: u64, len: usize, shared: bool| {
            let got = c.read_bytes(offset, len).unwrap();
            assert_eq!(
                matches!(got, ReadBytes::Shared(_)),
                shared,
                "{offset}+{len}"
            );
            assert_eq!(
                got.len(),
                got.slices().iter().map(|s| s.len()).sum::<usize>()
            );
            assert_eq!(
                got.into_vec(),
                c.read(offset, len).unwrap(),
                "{offset}+{len}"
            );
        };
        check(&c, 0, 1 << 20, true);
        check(&c, (3 << 20) - 10, 1 << 20, true); // data, then zeros
        check(&c, (5 << 20) - 3, 100, true); // past the end: cut short
        check(&c, 6 << 20, 100, false); // nothing to read
        c.write(100, b"dirty").unwrap();
        check(&c, 0, 1 << 20, false);
        check(&c, 105, 1 << 20, true);
        // Shrunk and grown again: the base's bytes past the cut read as zeros.
        c.truncate(2 << 20).unwrap();
        c.truncate(4 << 20).unwrap();
        check(&c, 1 << 20, 2 << 20, false);
        check(&c, 1 << 20, 1 << 20, true);
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
        let all = c.read(0, usize::MAX).unwrap();
        assert_eq!(&all[..10], &[7u8; 10]);
        assert!(all[10..].iter().all(|&b| b == 0));
        c.commit(&chunker, &*store);
        assert_eq!(c.read(0, usize::MAX).unwrap(), all);
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

    /// Writes `data` in 1 MiB writes, as the kernel sends a sequential write, and commits
    /// it as a worker does: frozen, chunked from the frozen layer, installed.
    fn write_and_commit_frozen(
        c: &mut FileContent,
        data: &[u8],
        chunker: &Chunker,
        store: &dyn ContentStore,
    ) -> Prepared {
        for (i, piece) in data.chunks(1 << 20).enumerate() {
            c.write((i << 20) as u64, piece).unwrap();
        }
        let through = c.freeze();
        let prepared = prepare_layers(
            &c.base,
            c.pending_through(&through).unwrap(),
            chunker,
            store,
        )
        .unwrap()
        .unwrap();
        let recipe = prepared.recipe.clone();
        c.install_layers(&through, recipe).unwrap();
        prepared
    }

    #[test]
    fn a_frozen_write_is_chunked_as_one_pass_and_its_buffers_are_shared() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let data = noise(8 << 20, 21);
        let mut c = FileContent::default();
        let mut prepared = write_and_commit_frozen(&mut c, &data, &chunker, &*store);
        // Every buffer is shared, and counted as held twice until the commit lets it go.
        assert_eq!(store.stats().held_twice_bytes, data.len() as u64);
        drop(std::mem::take(&mut prepared.held_twice));
        assert_eq!(store.stats().held_twice_bytes, 0);
        // The same chunks as one pass over one buffer, though they were cut from several
        // buffers and each chunk near a buffer's end from what was left of it.
        let mut whole = FileContent::default();
        whole.write(0, &data).unwrap();
        let fresh = whole.commit(&chunker, &*store).unwrap();
        assert_eq!(prepared.recipe, Some(fresh.recipe.clone()));
        assert_eq!(c.read(0, data.len()).unwrap(), data);
        // Shared, not copied: the memory held is the bytes stored and the buffers' bytes
        // that only the chunks cut across two of them used (those were copied).
        let stats = store.stats();
        assert_eq!(stats.stored_bytes, data.len() as u64);
        let slack = stats.resident_bytes - stats.stored_bytes;
        assert!(slack > 0, "nothing shared");
        assert!(
            slack < 8 * chunker.max as u64,
            "{slack} bytes pinned unused"
        );
        drop((c, whole, fresh, prepared));
        assert_eq!(store.stats(), Default::default(), "everything freed");
    }

    #[test]
    fn a_rewrite_that_is_mostly_stored_already_pins_no_buffer() {
        let store = MemoryStore::new();
        let chunker = Chunker::default();
        let data = noise(4 << 20, 22);
        let mut a = FileContent::default();
        write_and_commit_frozen(&mut a, &data, &chunker, &*store);
        let before = store.stats();
        // An editor's save: the whole file again, one byte changed.
        let mut edited = data.clone();
        edited[3 << 19] ^= 1;
        let mut b = FileContent::default();
        let prepared = write_and_commit_frozen(&mut b, &edited, &chunker, &*store);
        let after = store.stats();
        assert!(prepared.new_bytes > 0 && prepared.new_bytes <= 2 * chunker.max as u64);
        assert_eq!(
            after.resident_bytes - before.resident_bytes,
            prepared.new_bytes,
            "only the new chunk's bytes, copied out of a buffer it would pin"
        );
        assert_eq!(b.read(0, edited.len()).unwrap(), edited);
    }
}
