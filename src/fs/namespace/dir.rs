//! Directory entries with stable `readdir` offsets.
//!
//! Every entry gets a cookie from a per-directory counter that never goes back, so an offset
//! handed to the kernel stays meaningful while entries come and go: a reader resumes after
//! its cookie and sees every entry that was there all along exactly once. Cookies 1 and 2 are
//! "." and "..".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::fs::attr::FileKind;

/// The first cookie of a real entry (1 is ".", 2 is "..").
pub const FIRST_COOKIE: u64 = 3;

#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Arc<[u8]>,
    pub ino: u64,
    pub kind: FileKind,
}

#[derive(Debug)]
pub struct Directory {
    by_name: HashMap<Arc<[u8]>, u64>,
    by_cookie: BTreeMap<u64, Entry>,
    next_cookie: u64,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            by_name: HashMap::new(),
            by_cookie: BTreeMap::new(),
            next_cookie: FIRST_COOKIE,
        }
    }
}

impl Directory {
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.by_name
            .get(name)
            .and_then(|cookie| self.by_cookie.get(cookie))
    }

    /// Adds or replaces `name`. A replaced entry keeps its cookie (its place in a listing).
    pub fn set(&mut self, name: &[u8], ino: u64, kind: FileKind) {
        if let Some(cookie) = self.by_name.get(name) {
            if let Some(entry) = self.by_cookie.get_mut(cookie) {
                entry.ino = ino;
                entry.kind = kind;
                return;
            }
        }
        let name: Arc<[u8]> = Arc::from(name);
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_name.insert(name.clone(), cookie);
        self.by_cookie.insert(cookie, Entry { name, ino, kind });
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Entry> {
        let cookie = self.by_name.remove(name)?;
        self.by_cookie.remove(&cookie)
    }

    /// Entries after cookie `offset`, in cookie order, with their cookies.
    pub fn after(&self, offset: u64) -> impl Iterator<Item = (u64, &Entry)> {
        let from = offset.max(FIRST_COOKIE - 1) + 1;
        self.by_cookie.range(from..).map(|(&c, e)| (c, e))
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_cookie.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_valid_while_entries_change() {
        let mut d = Directory::default();
        for i in 0..10u8 {
            d.set(&[b'a' + i], i as u64 + 10, FileKind::Regular);
        }
        let first: Vec<_> = d.after(0).take(5).map(|(c, e)| (c, e.ino)).collect();
        let resume = first.last().unwrap().0;
        d.remove(b"b");
        d.remove(b"h");
        d.set(b"zz", 99, FileKind::Regular);
        let rest: Vec<u64> = d.after(resume).map(|(_, e)| e.ino).collect();
        assert_eq!(rest, vec![15, 16, 18, 19, 99]);
    }
}
