//! Real programs on a real mount: git round trips and a parallel C build.

mod common;
use common::*;

use std::path::Path;

const GIT_ENV: &str = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t \
                       GIT_COMMITTER_EMAIL=t@t GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent;";

/// A repository with a few commits, nested directories, a symlink and an executable.
fn make_repo(dir: &Path) {
    sh(
        dir,
        &format!(
            "{GIT_ENV} git init -q -b main repo && cd repo && \
             mkdir -p src/a/b docs && \
             for i in $(seq 1 50); do echo \"line $i\" > src/a/b/f$i.txt; done && \
             seq 1 20000 > docs/big.txt && ln -s docs/big.txt link && \
             printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh && \
             git add -A && git commit -qm one && \
             sed -i 's/line 7/LINE 7/' src/a/b/f7.txt && git rm -q src/a/b/f9.txt && \
             git mv docs/big.txt docs/big2.txt && ln -sf docs/big2.txt link && \
             git add -A && git commit -qm two && git gc -q"
        ),
    );
}

#[test]
fn git_init_commit_clone_fsck_status_on_the_mount() {
    let m = Mount::new();
    make_repo(m.path());
    // A clone from the mount to the mount, through the pack protocol (--no-local).
    sh(
        m.path(),
        &format!("{GIT_ENV} git clone -q --no-local repo clone && cd clone && git fsck --full"),
    );
    let status = sh(
        &m.join("clone"),
        &format!("{GIT_ENV} git status --porcelain"),
    );
    assert_eq!(status, "", "clone is not clean");
    let log = sh(
        &m.join("clone"),
        &format!("{GIT_ENV} git log --oneline | wc -l"),
    );
    assert_eq!(log.trim(), "2");
    assert_eq!(sh(&m.join("clone"), "./run.sh"), "hi\n");
    assert_eq!(sh(&m.join("clone"), "readlink link"), "docs/big2.txt\n");
    assert_counts_match_walk(m.path());
}

#[test]
fn git_clone_into_the_mount_from_outside() {
    let outside = tempfile::tempdir().unwrap();
    make_repo(outside.path());
    let m = Mount::new();
    let src = outside.path().join("repo");
    sh(
        m.path(),
        &format!(
            "{GIT_ENV} git clone -q --no-local {} clone && cd clone && git fsck --full && \
             test -z \"$(git status --porcelain)\" && git checkout -q HEAD~1 && \
             test -f src/a/b/f9.txt && git checkout -q main",
            src.display()
        ),
    );
    // Same files, same bytes as a clone on an ordinary file system.
    sh(
        outside.path(),
        &format!(
            "{GIT_ENV} git clone -q --no-local repo ref && diff -r --exclude=.git ref {}",
            m.join("clone").display()
        ),
    );
}

/// A program split over many files, built with make -j2 and run.
#[test]
fn parallel_c_build_and_run() {
    let m = Mount::new();
    let n = 24;
    let mut decls = String::new();
    let mut calls = String::new();
    for i in 0..n {
        std::fs::create_dir_all(m.join("src")).unwrap();
        std::fs::write(
            m.join(format!("src/part{i}.c")),
            format!(
                "#include \"parts.h\"\nint part{i}(int x) {{ return x * {i} + {}; }}\n",
                i % 7
            ),
        )
        .unwrap();
        decls.push_str(&format!("int part{i}(int x);\n"));
        calls.push_str(&format!("    sum += part{i}(3);\n"));
    }
    std::fs::write(m.join("src/parts.h"), &decls).unwrap();
    std::fs::write(
        m.join("src/main.c"),
        format!(
            "#include <stdio.h>\n#include \"parts.h\"\nint main(void) {{\n    long sum = 0;\n{calls}    printf(\"%ld\\n\", sum);\n    return 0;\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        m.join("Makefile"),
        "SRCS := $(wildcard src/*.c)\nOBJS := $(SRCS:src/%.c=build/%.o)\n\
         prog: $(OBJS) libparts.a\n\tcc -o $@ build/main.o libparts.a\n\
         libparts.a: $(filter-out build/main.o,$(OBJS))\n\tar rcs $@ $^\n\
         build/%.o: src/%.c src/parts.h | build\n\tcc -O1 -g -c -o $@ $<\n\
         build:\n\tmkdir -p build\n\
         clean:\n\trm -rf build prog libparts.a\n",
    )
    .unwrap();
    sh(m.path(), "make -j2 -s");
    let expected: i64 = (0..n).map(|i| 3 * i + i % 7).sum();
    assert_eq!(sh(m.path(), "./prog").trim(), expected.to_string());
    // An incremental rebuild after touching one source rebuilds and still runs.
    sh(
        m.path(),
        "sleep 0.01 && touch src/part3.c && make -j2 -s && ./prog >/dev/null",
    );
    sh(
        m.path(),
        "make -s clean && make -j2 -s && ./prog > /dev/null",
    );
    assert_counts_match_walk(m.path());
}
