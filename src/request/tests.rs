//! The request layer driven directly, as a transport would, with no kernel and no fuser.

use std::sync::Arc;
use std::time::Duration;

use crate::fs::{DirEntry, Errno, Fs, FsConfig, SetAttr, ROOT_INO};
use crate::router::Router;
use crate::trace::{Header, Op, Outcome, Record, Tracer};

use super::*;

const CTX: Context = Context {
    unique: 7,
    uid: 0,
    gid: 0,
    pid: 42,
};

fn server(tracer: Option<Arc<Tracer>>) -> Server {
    let options = KernelOptions {
        ttl: Duration::from_secs(5),
        ..KernelOptions::default()
    };
    let core = Router::new(Arc::new(Fs::new(FsConfig::default())));
    Server::new(Arc::new(core), options, tracer)
}

/// Collects readdir entries the way a transport fills its buffer.
struct Names(Vec<Vec<u8>>);

impl DirSink for Names {
    fn add(&mut self, entry: &DirEntry) -> bool {
        self.0.push(entry.name.clone());
        false
    }
}

#[test]
fn handlers_answer_plain_values_with_the_cache_policy() {
    let s = server(None);
    let name = b"f".as_slice();
    let missing = s
        .call(
            &CTX,
            Lookup {
                parent: ROOT_INO,
                name,
            },
        )
        .unwrap();
    assert!(missing.is_negative());
    assert_eq!(missing.ttl, Duration::from_secs(5));

    let create = Create {
        parent: ROOT_INO,
        name,
        mode: 0o644,
        flags: libc::O_WRONLY | libc::O_CREAT,
    };
    let created = s.call(&CTX, create).unwrap();
    assert_eq!(created.opened.flags, FOPEN_KEEP_CACHE);
    let ino = created.entry.attr.ino;
    let fh = created.opened.fh;
    let write = Write {
        ino,
        fh,
        offset: 0,
        data: b"hello",
        kill_suidgid: false,
    };
    assert_eq!(s.call(&CTX, write).unwrap(), 5);
    let flushed = s.call(&CTX, Flush { ino, fh }).unwrap();
    assert_eq!(flushed.version, Some(1));
    s.call(&CTX, Release { ino, fh }).unwrap();

    let found = s
        .call(
            &CTX,
            Lookup {
                parent: ROOT_INO,
                name,
            },
        )
        .unwrap();
    assert_eq!((found.attr.ino, found.attr.size), (ino, 5));

    let opendir = Opendir {
        ino: ROOT_INO,
        flags: 0,
    };
    assert_eq!(s.call(&CTX, opendir), Err(Errno::ENOSYS));
    let mut names = Names(Vec::new());
    let readdir = Readdir {
        ino: ROOT_INO,
        fh: 0,
        offset: 0,
        sink: &mut names,
    };
    s.call(&CTX, readdir).unwrap();
    assert!(names.0.contains(&b"f".to_vec()), "{:?}", names.0);

    let bad_rename = Rename {
        parent: ROOT_INO,
        name,
        newparent: ROOT_INO,
        newname: b"g",
        // A bit renameat2 does not define (RENAME_WHITEOUT is 1 << 2).
        flags: 1 << 3,
    };
    assert_eq!(s.call(&CTX, bad_rename), Err(Errno::EINVAL));
    let ioctl = Ioctl { ino, fh, cmd: 0 };
    assert_eq!(s.call(&CTX, ioctl), Err(Errno::ENOTTY));
}

/// Looks `name` up in `parent`.
fn lookup(s: &Server, parent: u64, name: &[u8]) -> u64 {
    s.call(&CTX, Lookup { parent, name }).unwrap().attr.ino
}

/// Records what the server tells the kernel outside replies.
#[derive(Default)]
struct KernelLog(parking_lot::Mutex<Vec<(&'static str, u64)>>);

impl KernelCache for KernelLog {
    fn forget_attributes(&self, ino: u64) {
        self.0.lock().push(("attributes", ino));
    }

    fn write_back(&self, ino: u64) -> bool {
        self.0.lock().push(("write back", ino));
        true
    }

    fn forget_listing(&self, dir: u64) {
        self.0.lock().push(("listing", dir));
    }
}

/// Lists `dir` to its end as the kernel does: from cookie 0, then from the last entry's
/// cookie until a call adds nothing.
fn list_to_end(s: &Server, dir: u64) -> Vec<Vec<u8>> {
    struct Page(Vec<(Vec<u8>, u64)>);
    impl DirSink for Page {
        fn add(&mut self, entry: &DirEntry) -> bool {
            if self.0.len() == 2 {
                return true;
            }
            self.0.push((entry.name.clone(), entry.offset));
            false
        }
    }
    let (mut names, mut offset) = (Vec::new(), 0);
    loop {
        let mut page = Page(Vec::new());
        let readdir = Readdir {
            ino: dir,
            fh: 0,
            offset,
            sink: &mut page,
        };
        s.call(&CTX, readdir).unwrap();
        let Some(&(_, last)) = page.0.last() else {
            return names;
        };
        offset = last;
        names.extend(page.0.into_iter().map(|(name, _)| name));
    }
}

#[test]
fn caches_are_kept_across_opens_except_under_dot_memfs() {
    let kernel = Arc::new(KernelLog::default());
    let s = server(None).with_kernel_cache(kernel.clone());
    let create = Create {
        parent: ROOT_INO,
        name: b"f",
        mode: 0o644,
        flags: libc::O_WRONLY | libc::O_CREAT,
    };
    s.call(&CTX, create).unwrap();
    let control = lookup(&s, ROOT_INO, b".memfs");
    let stats = lookup(&s, control, b"stats.json");
    let versions = lookup(&s, control, b"versions");
    let open = |ino| Open {
        ino,
        flags: libc::O_RDONLY,
        kill_suidgid: false,
    };
    let opendir = |ino| Opendir { ino, flags: 0 };
    assert_eq!(s.call(&CTX, open(stats)).unwrap().flags, FOPEN_DIRECT_IO);
    // The kernel opens directories itself, keeping their listings.
    for dir in [ROOT_INO, control, versions] {
        assert_eq!(s.call(&CTX, opendir(dir)), Err(Errno::ENOSYS));
    }
    // A listing of `.memfs/versions` (which gains entries without the kernel seeing it)
    // is dropped once it reaches its end, and only then; the root's and `.memfs`'s
    // (fixed entries) are kept.
    let mut partial = Names(Vec::new());
    let first = Readdir {
        ino: versions,
        fh: 0,
        offset: 0,
        sink: &mut partial,
    };
    s.call(&CTX, first).unwrap();
    assert!(kernel.0.lock().is_empty(), "{:?}", kernel.0.lock());
    for dir in [ROOT_INO, control, versions] {
        let names = list_to_end(&s, dir);
        assert!(names.len() > 2, "{names:?}");
    }
    assert_eq!(*kernel.0.lock(), vec![("listing", versions)]);

    let uncached = Server::new(
        s.core.clone(),
        KernelOptions {
            keep_cache: false,
            ..KernelOptions::default()
        },
        None,
    );
    let dir = uncached.call(&CTX, opendir(ROOT_INO)).unwrap();
    assert_eq!(dir.flags, FOPEN_CACHE_DIR);
}

#[test]
fn setuid_and_setgid_are_cleared_when_the_kernel_asks() {
    let s = server(None);
    let create = Create {
        parent: ROOT_INO,
        name: b"prog",
        mode: 0o6755,
        flags: libc::O_WRONLY | libc::O_CREAT,
    };
    let created = s.call(&CTX, create).unwrap();
    let (ino, fh) = (created.entry.attr.ino, created.opened.fh);
    let perm = || s.call(&CTX, Getattr { ino, fh: None }).unwrap().attr.perm;
    let set_mode = || {
        let chmod = Setattr {
            ino,
            fh: None,
            set: SetAttr {
                mode: Some(0o6755),
                ..SetAttr::default()
            },
            kill_suidgid: false,
        };
        s.call(&CTX, chmod).unwrap();
    };
    let write = |kill_suidgid| Write {
        ino,
        fh,
        offset: 0,
        data: b"x",
        kill_suidgid,
    };

    s.call(&CTX, write(false)).unwrap();
    assert_eq!(perm(), 0o6755, "a write the kernel did not flag");
    s.call(&CTX, write(true)).unwrap();
    assert_eq!(perm(), 0o755, "a flagged write");

    set_mode();
    let truncate = Setattr {
        ino,
        fh: None,
        set: SetAttr {
            size: Some(0),
            ..SetAttr::default()
        },
        kill_suidgid: true,
    };
    assert_eq!(s.call(&CTX, truncate).unwrap().attr.perm, 0o755);

    set_mode();
    let chown = Setattr {
        ino,
        fh: None,
        set: SetAttr {
            uid: Some(1000),
            ..SetAttr::default()
        },
        kill_suidgid: true,
    };
    assert_eq!(s.call(&CTX, chown).unwrap().attr.perm, 0o755);

    set_mode();
    let open = Open {
        ino,
        flags: libc::O_WRONLY | libc::O_TRUNC,
        kill_suidgid: true,
    };
    s.call(&CTX, open).unwrap();
    assert_eq!(perm(), 0o755, "a flagged truncating open");
}

#[test]
fn xattr_answers_are_sized_by_the_callers_buffer() {
    let s = server(None);
    let name = b"user.k".as_slice();
    let set = Setxattr {
        ino: ROOT_INO,
        name,
        value: b"value",
        flags: 0,
    };
    s.call(&CTX, set).unwrap();
    let get = |size| {
        s.call(
            &CTX,
            Getxattr {
                ino: ROOT_INO,
                name,
                size,
            },
        )
        .and_then(XattrValue::into_reply)
    };
    assert_eq!(get(0), Ok(Xattr::Size(5)));
    assert_eq!(get(2), Err(Errno::ERANGE));
    assert_eq!(get(64), Ok(Xattr::Data(b"value".to_vec())));
}

/// Panic points exist in debug builds only (`fs::test_panic_point`).
#[cfg(debug_assertions)]
#[test]
fn a_panicking_handler_answers_eio_and_the_server_goes_on() {
    let s = server(None);
    let name = b"request-layer-panic".as_slice();
    std::env::set_var("MEMFS_TEST_PANIC_ON_LOOKUP", "request-layer-panic");
    let panicked = s.call(
        &CTX,
        Lookup {
            parent: ROOT_INO,
            name,
        },
    );
    std::env::remove_var("MEMFS_TEST_PANIC_ON_LOOKUP");
    assert_eq!(panicked, Err(Errno::EIO));
    let after = s
        .call(
            &CTX,
            Getattr {
                ino: ROOT_INO,
                fh: None,
            },
        )
        .unwrap();
    assert_eq!(after.attr.ino, ROOT_INO);
}

#[test]
fn every_call_is_recorded_once_with_its_arguments_and_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let header = Header::new("/m", "test", serde_json::json!({}));
    let tracer = Arc::new(Tracer::create(&path, &header).unwrap());
    let s = server(Some(tracer.clone()));
    s.init(&CTX);
    let name = b"d".as_slice();
    s.call(
        &CTX,
        Lookup {
            parent: ROOT_INO,
            name,
        },
    )
    .unwrap();
    let mkdir = Mkdir {
        parent: ROOT_INO,
        name,
        mode: 0o755,
    };
    let made = s.call(&CTX, mkdir).unwrap();
    let again = Mkdir {
        parent: ROOT_INO,
        name,
        mode: 0o755,
    };
    assert_eq!(s.call(&CTX, again), Err(Errno::EEXIST));
    s.forget(&CTX, made.attr.ino, 1);
    s.destroy();
    assert_eq!(tracer.finish().unwrap(), 6);

    let text = std::fs::read_to_string(&path).unwrap();
    // The header, then CTX's process (pid 42) before its first record, then the records.
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["memfs_trace"], crate::trace::FORMAT);
    assert!(text.lines().nth(1).unwrap().starts_with("{\"process\":42,"));
    let lines: Vec<&str> = text.lines().skip(2).collect();
    let records: Vec<Record> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ops: Vec<&str> = records.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(
        ops,
        ["init", "lookup", "mkdir", "mkdir", "forget", "destroy"]
    );
    assert_eq!(records[1].ino, None, "a negative entry names no inode");
    assert_eq!(records[1].result, Outcome::Err(Errno::ENOENT));
    assert!(records[1].negative);
    assert_eq!(records[2].op, Op::Mkdir);
    assert_eq!(records[2].ino, Some(made.attr.ino));
    assert_eq!(records[3].result, Outcome::Err(Errno::EEXIST));
    assert_eq!(records[5].pid, None, "destroy has no caller");
    // The exact bytes a trace has always held for these requests.
    let mkdir_line = lines[2].split(",\"op\"").nth(1).unwrap();
    assert_eq!(
        mkdir_line,
        format!(
            ":\"mkdir\",\"ino\":{},\"parent\":1,\"name\":\"d\",\"pid\":42,\"uid\":0,\"gid\":0,\
             \"flags\":\"0o755\",\"result\":\"ok\",\"generation\":0,\"attr_size\":{}}}",
            made.attr.ino, made.attr.size
        )
    );
    assert!(lines[3].ends_with(
        "\"name\":\"d\",\"pid\":42,\"uid\":0,\"gid\":0,\"flags\":\"0o755\",\"result\":\"EEXIST\"}"
    ));
    assert!(lines[0].starts_with("{\"unique\":7,\"t_ns\":"));
}
