#!/usr/bin/env bash
# One clone+build run of a local git repository on a fresh memfs or tmpfs mount, printed as
# one JSON line: clone and build wall times, and (memfs) the final stats: peak resident
# memory, live logical bytes, unique stored bytes, dedup ratio.
#
#   scripts/clone-build.sh TARGET REPO 'BUILD COMMAND' [memfs mount options...]
#   TARGET: memfs | tmpfs
#   e.g. scripts/clone-build.sh memfs /work/srccache/redis-src 'make -j2' --chunk-avg 16384
set -euo pipefail
target=$1 repo=$2 build=$3
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
memfs=${MEMFS:-$here/target/release/memfs}
work=$(mktemp -d /tmp/clone-build.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
pid=""
cleanup() {
    if grep -q " $mnt " /proc/mounts; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ "$target" = tmpfs ]; then
    mount -t tmpfs -o size=16g tmpfs "$mnt"
else
    "$memfs" mount "$mnt" --stats-out "$work/stats.json" "$@" 2> "$work/memfs.log" &
    pid=$!
    for _ in $(seq 200); do grep -q " $mnt " /proc/mounts && break; sleep 0.05; done
fi

now() { date +%s.%N; }
t0=$(now)
git clone -q --no-local "$repo" "$mnt/src"
t1=$(now)
(cd "$mnt/src" && eval "$build") > "$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
t2=$(now)
bytes=$(du -sb --apparent-size "$mnt/src" | cut -f1)
hwm=0
if [ -n "$pid" ]; then hwm=$(awk '/VmHWM/ {print $2 * 1024}' /proc/$pid/status); fi
umount "$mnt"
if [ -n "$pid" ]; then wait "$pid"; pid=""; fi
python3 - "$target" "$t0" "$t1" "$t2" "$bytes" "$hwm" "$work/stats.json" "$*" <<'PY'
import json, sys, os
target, t0, t1, t2, size, hwm, stats_path, opts = sys.argv[1:]
row = {"target": target, "options": opts, "clone_s": round(float(t1) - float(t0), 3),
       "build_s": round(float(t2) - float(t1), 3), "apparent_bytes": int(size)}
if os.path.exists(stats_path) and os.path.getsize(stats_path) > 0:
    s = json.load(open(stats_path))
    row.update(peak_rss_bytes=int(hwm), logical_bytes=s["logical_bytes"],
               stored_bytes=s["stored_bytes"], dedup_ratio=round(s["dedup_ratio"], 3),
               blobs=s["blobs"], versions=s["versions"], version_bytes=s["version_bytes"])
print(json.dumps(row))
PY
