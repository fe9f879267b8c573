#!/usr/bin/env bash
# Counts the FUSE requests each workload sends to a traced memfs, per op. Counts, unlike
# timings, do not drift with the load of a shared machine, so they show what a kernel setting
# saves. One mount runs every phase in turn; a failed lookup of `.phase-NAME` marks where a
# phase starts in the trace.
#
#   scripts/request-counts.sh [-b BIN] [-o DIR] [-- MOUNT-OPTIONS...]
#
# Phases: untar of redis (tar.gz), 100 MiB in 4107-byte writes + fsync, `git clone
# --no-local` of redis, a warm stat walk, a re-read of every file, a stat walk after dropping
# dentries and inodes, and rm -rf. Needs root, /work/srcpkgs/redis_7.0.15.orig.tar.gz,
# git and python3.
set -euo pipefail

BIN=target/debug/memfs
OUT=/tmp/request-counts
while getopts "b:o:" opt; do
    case $opt in
        b) BIN=$OPTARG ;;
        o) OUT=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

TARBALL=/work/srcpkgs/redis_7.0.15.orig.tar.gz
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$OUT/redis-repo
if [ ! -d "$REPO/.git" ]; then
    mkdir -p "$REPO"
    tar -xzf "$TARBALL" -C "$REPO" --strip-components=1
    git -C "$REPO" init -q
    git -C "$REPO" add -A -f
    git -C "$REPO" -c user.name=bench -c user.email=bench@localhost commit -qm import
    git -C "$REPO" gc -q
fi

MNT=$OUT/mnt
TRACE=$OUT/trace.jsonl
mkdir -p "$MNT"
rm -f "$TRACE"
"$BIN" mount --trace "$TRACE" "$@" "$MNT" >"$OUT/memfs.log" 2>&1 &
PID=$!
for _ in $(seq 50); do
    grep -q " $MNT fuse" /proc/mounts && break
    sleep 0.1
done

phase() { stat "$MNT/.phase-$1" >/dev/null 2>&1 || true; }

phase untar
tar -xzf "$TARBALL" -C "$MNT"
phase small-writes
dd if=/dev/zero of="$MNT/small" bs=4107 count=25532 conv=fsync status=none
phase clone
git clone -q --no-local "$REPO" "$MNT/clone"
phase walk-warm
find "$MNT/redis-7.0.15" -print0 | xargs -0 stat >/dev/null
phase reread
find "$MNT/redis-7.0.15" -type f -print0 | xargs -0 cat >/dev/null
phase walk-cold
sync
echo 2 >/proc/sys/vm/drop_caches
find "$MNT/redis-7.0.15" -print0 | xargs -0 stat >/dev/null
phase rm
rm -rf "${MNT:?}"/*
phase end

umount "$MNT"
wait "$PID" || true

python3 - "$TRACE" <<'EOF'
import collections, json, sys

phases = collections.OrderedDict()
current = None
with open(sys.argv[1]) as f:
    next(f)  # the header
    for line in f:
        r = json.loads(line)
        if "process" in r:
            continue  # a pid's name (trace format 2), not a request
        name = r.get("name", "")
        if r.get("op") == "lookup" and name.startswith(".phase-"):
            current = name[len(".phase-"):]
            if current != "end":
                phases[current] = collections.Counter()
            continue
        if current and current != "end":
            op = r["op"]
            if op == "getxattr":
                op = "getxattr " + name
            phases[current][op] += 1

ops = collections.Counter()
for counts in phases.values():
    ops.update(counts)
columns = [op for op, _ in ops.most_common()]
print("| phase | total | " + " | ".join(columns) + " |")
print("|---" * (len(columns) + 2) + "|")
for phase, counts in phases.items():
    row = [str(counts.get(op, 0)) for op in columns]
    print(f"| {phase} | {sum(counts.values())} | " + " | ".join(row) + " |")
EOF
