//! Many threads creating, renaming and unlinking at once.

use std::collections::HashSet;
use std::fs;

use crate::common::*;
use crate::sys::*;

fn body(t: usize, i: usize) -> Vec<u8> {
    format!("thread {t} file {i};")
        .repeat(1 + i % 50)
        .into_bytes()
}

#[test]
fn concurrent_creates_renames_and_unlinks() {
    let m = Mount::new();
    let root = m.path().to_path_buf();
    let shared = m.join("shared");
    let p1 = m.join("p1");
    let p2 = m.join("p2");
    for d in [&shared, &p1, &p2] {
        fs::create_dir(d).unwrap();
    }
    const SUBDIRS: usize = 8;
    for s in 0..SUBDIRS {
        let d = p1.join(format!("s{s}"));
        fs::create_dir_all(d.join("inner")).unwrap();
        fs::write(d.join("a"), format!("a{s}")).unwrap();
        fs::write(d.join("inner/b"), format!("b{s}")).unwrap();
    }

    let in_p2 = std::thread::scope(|scope| {
        for t in 0..4 {
            let shared = &shared;
            scope.spawn(move || {
                for i in 0..500 {
                    let tmp = shared.join(format!("t{t}-{i}.tmp"));
                    let fin = shared.join(format!("t{t}-{i}"));
                    fs::write(&tmp, body(t, i)).unwrap();
                    must(rename(&tmp, &fin), "rename tmp to final");
                    if i % 5 == 0 {
                        // Atomic replace of a per-thread "latest".
                        let tmp = shared.join(format!("t{t}-latest-{i}.tmp"));
                        fs::write(&tmp, body(t, i)).unwrap();
                        must(
                            rename(&tmp, &shared.join(format!("t{t}-latest"))),
                            "rename over latest",
                        );
                    }
                    if i % 3 == 0 {
                        must(unlink(&fin), "unlink");
                    }
                }
            });
        }
        // A lister: no name that is created once may show up twice in one listing.
        let lister = {
            let shared = &shared;
            scope.spawn(move || {
                let mut listings = 0;
                for _ in 0..20 {
                    let mut seen = HashSet::new();
                    for e in fs::read_dir(shared).unwrap() {
                        let name = e.unwrap().file_name();
                        if name.to_str().unwrap().contains("latest") {
                            continue;
                        }
                        assert!(seen.insert(name.clone()), "{name:?} listed twice");
                    }
                    listings += 1;
                }
                listings
            })
        };
        let mover = {
            let (p1, p2) = (&p1, &p2);
            scope.spawn(move || {
                let mut in_p2 = [false; SUBDIRS];
                for k in 0..400 {
                    let s = (k * 5) % SUBDIRS;
                    let name = format!("s{s}");
                    let (from, to) = if in_p2[s] { (p2, p1) } else { (p1, p2) };
                    must(rename(&from.join(&name), &to.join(&name)), "move subdir");
                    in_p2[s] = !in_p2[s];
                }
                in_p2
            })
        };
        assert_eq!(lister.join().unwrap(), 20);
        mover.join().unwrap()
    });

    for t in 0..4 {
        for i in 0..500 {
            let fin = shared.join(format!("t{t}-{i}"));
            if i % 3 == 0 {
                expect_errno(try_stat(&fin), libc::ENOENT, &format!("unlinked t{t}-{i}"));
            } else {
                assert_eq!(fs::read(&fin).unwrap(), body(t, i), "t{t}-{i}");
            }
        }
        assert_eq!(
            fs::read(shared.join(format!("t{t}-latest"))).unwrap(),
            body(t, 495)
        );
    }
    let listed = names(&shared);
    assert!(
        listed
            .iter()
            .all(|n| !n.to_str().unwrap().ends_with(".tmp")),
        "temporary names left"
    );
    assert_eq!(listed.len(), 4 * (500 - 167) + 4);
    for (s, &is_in_p2) in in_p2.iter().enumerate() {
        let name = format!("s{s}");
        let (home, other) = if is_in_p2 { (&p2, &p1) } else { (&p1, &p2) };
        let d = home.join(&name);
        assert_eq!(fs::read(d.join("a")).unwrap(), format!("a{s}").as_bytes());
        assert_eq!(
            fs::read(d.join("inner/b")).unwrap(),
            format!("b{s}").as_bytes()
        );
        expect_errno(try_stat(&other.join(&name)), libc::ENOENT, "moved subdir");
    }
    let moved = in_p2.iter().filter(|&&b| b).count() as u64;
    assert_eq!(stat(&p2).st_nlink, 2 + moved);
    assert_eq!(stat(&p1).st_nlink, 2 + SUBDIRS as u64 - moved);
    assert_eq!(descendants(&p2), 4 * moved);
    assert_counts_match_walk(&root);
}
