#!/usr/bin/env bash
# The figures of README "Snapshots and diffs": the time and memory of a snapshot of a
# 100,000-file tree, and a diff of two snapshots of a 20,000-file tree that differ in three
# files, against diff -rq and git status on the same trees. Needs a release build
# (cargo build --release), git and python3; run as root (it mounts memfs).
set -euo pipefail
cd "$(dirname "$0")/.."
memfs="$(pwd)/target/release/memfs"
work=$(mktemp -d /tmp/memfs-snapfig.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
pid=""
cleanup() {
    if grep -q " $mnt fuse" /proc/mounts; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# setsid: memfs leads its session, so $! is the server (on rings memfs would otherwise
# fork into a session of its own, and $! would be the process that waits for it).
setsid "$memfs" mount "$mnt" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q " $mnt fuse" /proc/mounts && break; sleep 0.05; done

rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
meta() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata_bytes"])' "$mnt/.memfs/stats.json"; }
# N files of about 100 bytes each under $1: with "flat", directories of 1000 files; with
# "nested", a source-tree shape of 10 x 10 x 10 directories of 20 files.
make_tree() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, shape = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    if shape == "flat":
        d, name = "d%03d" % (i // 1000), "f%04d.txt" % (i % 1000)
    else:
        d = "d%d/e%d/g%d" % (i // 2000, i // 200 % 10, i // 20 % 10)
        name = "f%02d.txt" % (i % 20)
    d = os.path.join(root, d)
    if i % 20 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write(("file %d " % i) * 12)
PY
}

echo "== 100,000 files: snapshot time and memory"
make_tree "$mnt/big" 100000 flat
sync
rss0=$(rss); meta0=$(meta)
"$memfs" snapshot create "$mnt" big1
rss1=$(rss); meta1=$(meta)
"$memfs" snapshot create "$mnt" big2
rss2=$(rss); meta2=$(meta)
echo "RSS growth: first snapshot $(( (rss1 - rss0) / 1024 )) KiB, second $(( (rss2 - rss1) / 1024 )) KiB"
echo "charged against --max-memory: $(( (meta1 - meta0) / 1024 )) KiB, $(( (meta2 - meta1) / 1024 )) KiB"
echo "per file: $(( (meta1 - meta0) / 100000 )) B charged, $(( (rss1 - rss0) / 100000 )) B of RSS"
"$memfs" snapshot delete "$mnt" big1 >/dev/null
"$memfs" snapshot delete "$mnt" big2 >/dev/null
rm -rf "$mnt/big"

echo "== 20,000 files: diff of two snapshots that differ in three files"
make_tree "$mnt/t" 20000 nested
git -C "$mnt/t" init -q
git -C "$mnt/t" add -A
git -C "$mnt/t" -c user.name=f -c user.email=f@localhost commit -q -m base
git -C "$mnt/t" status --short >/dev/null # the index's stat cache, as a user's would be
"$memfs" snapshot create "$mnt" a >/dev/null
echo changed >> "$mnt/t/d1/e2/g3/f07.txt"
echo changed >> "$mnt/t/d5/e0/g9/f19.txt"
echo new > "$mnt/t/d9/e9/g9/new.txt"
"$memfs" snapshot create "$mnt" b >/dev/null
A="$mnt/.memfs/snapshots/a/t" B="$mnt/.memfs/snapshots/b/t"
# The best of three runs, in ms (the machine may be busy with other work).
timeit() {
    local s e t best=""
    for _ in 1 2 3; do
        s=$(date +%s%N); "$@" >/dev/null || true; e=$(date +%s%N)
        t=$(( (e - s) / 1000000 ))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best ms"
}
echo "memfs diff (snapshots):      $(timeit "$memfs" diff "$A" "$B")"
echo "memfs diff (snapshot, live): $(timeit "$memfs" diff "$A" "$mnt/t")"
"$memfs" diff --json "$A" "$B"
echo "diff -rq (snapshots):        $(timeit diff -rq "$A" "$B")"
echo "git status (live tree):      $(timeit git -C "$mnt/t" status --short)"
cp -a "$mnt/t" "$mnt/t2"
echo "diff -rq (two live copies):  $(timeit diff -rq -x .git "$mnt/t" "$mnt/t2")"
