#!/usr/bin/env bash
# The phases of issue 11 on tmpfs, memfs (any number of variants or binaries) and
# libfuse's passthrough_hp: wall time and client CPU per phase, ratio to tmpfs, and the
# servers' peak memory against the bytes they hold.
#
# usage: scripts/bench-phases.sh [-q] [-b MEMFS_BIN] [-r ROUNDS] [-o OUT_DIR] [TARGET...]
#
#   -q            smoke mode: 64 MiB instead of 1 GiB, 4 MiB of small writes, the redis
#                 tarball instead of PostgreSQL's (a few seconds per target and round).
#   -b MEMFS_BIN  memfs binary (default: target/release/memfs). Copy it somewhere stable
#                 first if someone may rebuild while the benchmark runs.
#   -r ROUNDS     rounds (default 3). Each round runs every target once, so machine
#                 noise spreads over all of them; round r starts at the r-th target and
#                 wraps, because a target measured right after another's heavy round runs
#                 5-20% slower (rounds >= targets puts each in every position once).
#   -o OUT_DIR    results (default /tmp/bench-phases/run-TIMESTAMP): raw.csv (one row per
#                 phase, target and round), memory.csv, setup.txt, summary.md (tables to
#                 paste into the README), phases.svg (the chart), logs/.
#   TARGET        NAME:SPEC. SPEC is memfs's mount options, optionally after bin=PATH to
#                 run another memfs binary; {trace} in it becomes a fresh trace file per
#                 run (deleted after the run). 'NAME:passthrough_hp[=PATH] [OPTIONS]' is
#                 libfuse's passthrough_hp serving a fresh tmpfs directory (built by
#                 scripts/passthrough-hp.sh). tmpfs (mount -t tmpfs) is always there,
#                 first in round 1 (its trees are the reference), and is the baseline.
#                 Without targets: 'memfs:' 'memfs-trace:--trace {trace}' and
#                 'passthrough_hp:passthrough_hp' when it is built.
#
# Phases, in this order, each target on a fresh mount per round (so rm removes them all):
#   clone       git clone -q --no-local $REDIS_REPO M/redis
#   walk-cold   find M/redis -type f | xargs stat, after sync and drop_caches
#   walk-warm   the same again
#   untar       tar -xf of PostgreSQL 15's orig tarball (decompressed once up front, so
#               bzip2's CPU does not hide the file system; -q: redis's) into M/untar
#   write       dd if=BIG of=M/big bs=1M conv=fsync: 1 GiB (-q: 64 MiB)
#   read        dd if=M/big of=/dev/null bs=1M, after sync and drop_caches
#   small       dd if=SMALL of=M/small bs=4107 count=25532 conv=fsync: 100 MiB in
#               4107-byte write(2)s (-q: 1021 of them, 4 MiB); dd's "N+0 records out"
#               proves every write was whole
#   rm          rm -rf of all the above
# BIG and SMALL are random bytes (so memfs cannot deduplicate them away) made once per
# run, on a tmpfs of their own, so drop_caches does not evict them and reading them costs
# every target the same. Wall time is date +%s%N around the phase; client CPU is the user
# plus system time of the phase's processes (bash's `times` in a subshell). Before rm the
# trees are checked against tmpfs's (file count and bytes; git status of the clone; cmp
# of both dd files), and a mismatch marks the row BAD. Just before unmounting, the
# server's VmHWM (/proc/PID/status) is recorded against the bytes it held before rm:
# memfs's stored_bytes (.memfs/stats.json, unique bytes after dedup), or the data's size
# (du -sb) for the others.
#
# Inputs (override by environment): REDIS_REPO=/work/srccache/redis-src (made from
# REDIS_TGZ with `git add -A -f` if missing), REDIS_TGZ=/work/srcpkgs/redis_7.0.15.orig.tar.gz,
# PG_ARCHIVE=the newest /work/srcpkgs/postgresql-15_*.orig.tar.*. To fetch the tarballs:
#   cd /work/srcpkgs && apt-get source --download-only redis postgresql-15
#
# Needs root (tmpfs and FUSE mounts, drop_caches), /dev/fuse, python3-matplotlib.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=target/release/memfs
ROUNDS=3
OUT=""
SMOKE=0
while getopts "qb:r:o:h" opt; do
    case $opt in
        q) SMOKE=1 ;;
        b) BIN=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        h) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-q] [-b BIN] [-r ROUNDS] [-o OUT] [NAME:SPEC...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

die() { echo "bench-phases: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (tmpfs and FUSE mounts, drop_caches)"
[ -x "$BIN" ] || die "no memfs binary at $BIN (cargo build --release, or -b PATH)"
BIN=$(realpath "$BIN")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number"
python3 -c 'import matplotlib' 2>/dev/null ||
    die "matplotlib is missing (it draws the chart): apt-get install python3-matplotlib"

REDIS_REPO=${REDIS_REPO:-/work/srccache/redis-src}
REDIS_TGZ=${REDIS_TGZ:-/work/srcpkgs/redis_7.0.15.orig.tar.gz}
if [ -z "${PG_ARCHIVE:-}" ]; then
    PG_ARCHIVE=$(ls /work/srcpkgs/postgresql-15_*.orig.tar.* 2>/dev/null | grep -E '\.(bz2|gz|xz)$' | sort -V | tail -n1 || true)
fi

if [ $SMOKE -eq 1 ]; then
    BIG_MIB=64 SMALL_COUNT=1021 UNTAR_ARCHIVE=$REDIS_TGZ UNTAR_WHAT="redis"
else
    BIG_MIB=1024 SMALL_COUNT=25532 UNTAR_ARCHIVE=$PG_ARCHIVE UNTAR_WHAT="postgresql-15"
fi
SMALL_BS=4107
[ -f "$REDIS_TGZ" ] || [ -d "$REDIS_REPO" ] || die "no $REDIS_TGZ (and no $REDIS_REPO)"
[ -n "$UNTAR_ARCHIVE" ] && [ -f "$UNTAR_ARCHIVE" ] ||
    die "no tarball to untar (PG_ARCHIVE / REDIS_TGZ; -q uses redis's)"

OUT=${OUT:-/tmp/bench-phases/run-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs" "$OUT/mnt" "$OUT/inputs"
OUT=$(realpath "$OUT")
RAW=$OUT/raw.csv
MEM=$OUT/memory.csv

# --- targets ---------------------------------------------------------------------------
if [ $# -eq 0 ]; then
    set -- "memfs:" "memfs-trace:--trace {trace}"
    if "$HERE/passthrough-hp.sh" --check >/dev/null 2>&1; then
        set -- "$@" "passthrough_hp:passthrough_hp"
    else
        echo "bench-phases: passthrough_hp is not built (scripts/passthrough-hp.sh): skipping it" >&2
    fi
fi
NAMES=(tmpfs)
SPECS=("")
for t in "$@"; do
    [[ $t == *:* ]] || die "target '$t' is not NAME:SPEC"
    name=${t%%:*}
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad target name '$name'"
    [ "$name" != tmpfs ] || continue
    for n in "${NAMES[@]}"; do [ "$n" != "$name" ] || die "target '$name' given twice"; done
    NAMES+=("$name")
    SPECS+=("${t#*:}")
done

# --- mounting, with cleanup on any exit --------------------------------------------------
TAG=bench-phases
MEMFS_BIN=$BIN
# shellcheck source=scripts/lib/targets.sh
. "$HERE/lib/targets.sh"
on_exit() {
    targets_cleanup
    mountpoint -q "$OUT/inputs" && { umount "$OUT/inputs" || umount -l "$OUT/inputs"; }
    rm -rf "$OUT/mnt" "$OUT/inputs" "$OUT"/logs/*.trace.jsonl
}
trap on_exit EXIT
trap 'echo "bench-phases: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# What each target runs, checked before the inputs are made.
{
    echo "memfs: $BIN ($(sha256sum "$BIN" | cut -c1-12))"
    echo "host: $(uname -r), $(nproc) CPUs; rounds: $ROUNDS; smoke: $SMOKE"
    echo "clone: $REDIS_REPO; untar: $UNTAR_ARCHIVE; write: $BIG_MIB MiB; small: $SMALL_COUNT x $SMALL_BS B"
} >"$OUT/setup.txt"
for i in "${!NAMES[@]}"; do
    case $(target_kind "${NAMES[$i]}" "${SPECS[$i]}") in
        tmpfs) line="mount -t tmpfs -o size=$TMPFS_SIZE tmpfs MNT" ;;
        passthrough_hp)
            split_spec "${SPECS[$i]}" passthrough_hp ""
            [ -n "$SPEC_BIN" ] || SPEC_BIN=$(passthrough_hp_bin) || die "passthrough_hp is not built"
            [ -x "$SPEC_BIN" ] || die "no passthrough_hp at $SPEC_BIN"
            line="$SPEC_BIN --foreground ${SPEC_OPTS:+$SPEC_OPTS }SRC MNT (SRC: a fresh tmpfs)" ;;
        memfs)
            split_spec "${SPECS[$i]}" bin "$BIN"
            [ -x "$SPEC_BIN" ] || die "no memfs at $SPEC_BIN"
            line="$SPEC_BIN mount MNT $SPEC_OPTS" ;;
    esac
    echo "target ${NAMES[$i]}: $line" >>"$OUT/setup.txt"
done
cat "$OUT/setup.txt" >&2

# --- inputs --------------------------------------------------------------------------------
if [ ! -d "$REDIS_REPO/.git" ]; then
    echo "bench-phases: making $REDIS_REPO from $REDIS_TGZ" >&2
    mkdir -p "$REDIS_REPO"
    tar -xzf "$REDIS_TGZ" -C "$REDIS_REPO" --strip-components=1
    # -f: the tarball's own .gitignore files hide files a build needs (deps/jemalloc/configure).
    git -C "$REDIS_REPO" init -q
    git -C "$REDIS_REPO" add -A -f
    git -C "$REDIS_REPO" -c user.name=bench -c user.email=bench@memfs commit -qm import
fi

IN=$OUT/inputs
mount -t tmpfs -o size=$((BIG_MIB + 1024))m tmpfs "$IN"
UNTAR_TAR=$IN/untar.tar
echo "bench-phases: preparing inputs in $IN" >&2
case $UNTAR_ARCHIVE in
    *.bz2) bzip2 -dc "$UNTAR_ARCHIVE" >"$UNTAR_TAR" ;;
    *.gz) gzip -dc "$UNTAR_ARCHIVE" >"$UNTAR_TAR" ;;
    *.xz) xz -dc "$UNTAR_ARCHIVE" >"$UNTAR_TAR" ;;
    *) cp "$UNTAR_ARCHIVE" "$UNTAR_TAR" ;;
esac
head -c $((BIG_MIB << 20)) /dev/urandom >"$IN/big"
head -c $((SMALL_BS * SMALL_COUNT)) /dev/urandom >"$IN/small"
untar_entries=$(tar -tf "$UNTAR_TAR" | wc -l)
redis_entries=$(git -C "$REDIS_REPO" ls-files | wc -l)

# The phase labels, in order, for the report.
human() { awk -v n="$1" 'BEGIN { if (n >= 2^30) printf "%.0f GiB", n / 2^30; else printf "%.0f MiB", n / 2^20 }'; }
{
    printf 'clone\t`git clone --no-local` of redis\n'
    printf 'walk-cold\tstat walk after drop_caches (%s files)\n' "$redis_entries"
    printf 'walk-warm\tstat walk, warm\n'
    printf 'untar\tuntar %s (%s entries)\n' "$UNTAR_WHAT" "$untar_entries"
    printf 'write\t%s `dd bs=1M conv=fsync`\n' "$(human $((BIG_MIB << 20)))"
    printf 'read\t%s read after drop_caches\n' "$(human $((BIG_MIB << 20)))"
    printf 'small\t%s in %s-byte writes + fsync\n' "$(human $((SMALL_BS * SMALL_COUNT)))" "$SMALL_BS"
    printf 'rm\t`rm -rf` of all the above\n'
} >"$OUT/phases.tsv"

# --- measuring ---------------------------------------------------------------------------
echo "phase,target,round,wall_ms,cpu_ms,status" >"$RAW"
echo "target,round,peak_rss_bytes,stored_bytes,stored_from" >"$MEM"
LAST_STATUS=ok
CPU_FILE=$OUT/logs/.times

# timed PHASE TARGET ROUND CMD...: run CMD; append its wall time and CPU time to raw.csv.
timed() {
    local phase=$1 target=$2 round=$3 t0 t1 rc=0 cpu
    shift 3
    t0=$(date +%s%N)
    # A subshell, so `times` counts this phase's processes only (its own line plus its
    # children's; the first is the subshell's work, nearly nothing).
    ( rc=0; "$@" || rc=$?; times >"$CPU_FILE"; exit $rc ) || rc=$?
    t1=$(date +%s%N)
    cpu=$(awk '{ for (i = 1; i <= NF; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } }
               END { printf "%.1f", s * 1000 }' "$CPU_FILE")
    LAST_STATUS=ok
    [ $rc -eq 0 ] || LAST_STATUS="exit$rc"
    printf '%s,%s,%s,%.1f,%s,%s\n' "$phase" "$target" "$round" \
        "$(( (t1 - t0) / 1000 ))e-3" "$cpu" "$LAST_STATUS" >>"$RAW"
    [ $rc -eq 0 ] || echo "bench-phases: $phase on $target round $round failed ($LAST_STATUS)" >&2
}
mark_bad() { # mark_bad PHASE TARGET ROUND REASON: flag that row in raw.csv
    awk -F, -v OFS=, -v p="$1" -v t="$2" -v r="$3" -v why="BAD-$4" \
        '$1 == p && $2 == t && $3 == r && $6 == "ok" { $6 = why } { print }' "$RAW" >"$RAW.tmp"
    mv "$RAW.tmp" "$RAW"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

do_walk() { find "$1" -type f -print0 | xargs -0 stat --format=%s >/dev/null; }
# do_dd LOG WANT ARGS...: dd, then check from its report that all WANT records were whole.
do_dd() {
    local log=$1 want=$2
    shift 2
    dd "$@" 2>"$log" || return 1
    grep -q "^$want+0 records out" "$log" ||
        { echo "bench-phases: dd $*: not $want whole records:" >&2; cat "$log" >&2; return 1; }
}
tree_sig() { # "FILES BYTES" under DIR
    find "$1" -type f -print0 | xargs -0 stat --format=%s | awk '{ n++; s += $1 } END { print n + 0, s + 0 }'
}
declare -A EXPECT
check() { # check PHASE TARGET ROUND SIG: compare with the first target's signature
    if [ -z "${EXPECT[$1]:-}" ]; then
        EXPECT[$1]=$4
    elif [ "${EXPECT[$1]}" != "$4" ]; then
        echo "bench-phases: $1 on $2 round $3: got '$4', expected '${EXPECT[$1]}'" >&2
        mark_bad "$1" "$2" "$3" content
    fi
}

run_target() { # run_target TARGET-INDEX ROUND
    local name=${NAMES[$1]} spec=${SPECS[$1]} r=$2 p
    local dir=$OUT/mnt/$name log=$OUT/logs/$name-r$r.log trace=$OUT/logs/$name-r$r.trace.jsonl
    spec=${spec//\{trace\}/$trace}
    if ! mount_target "$name" "$spec" "$dir" "$log"; then
        for p in $(cut -f1 "$OUT/phases.tsv"); do echo "$p,$name,$r,,,mountfail" >>"$RAW"; done
        targets_cleanup
        return 0
    fi
    timed clone "$name" "$r" git clone -q --no-local "$REDIS_REPO" "$dir/redis"
    drop_caches
    timed walk-cold "$name" "$r" do_walk "$dir/redis"
    timed walk-warm "$name" "$r" do_walk "$dir/redis"
    mkdir -p "$dir/untar"
    timed untar "$name" "$r" tar -xf "$UNTAR_TAR" -C "$dir/untar"
    timed write "$name" "$r" do_dd "$OUT/logs/dd.log" "$BIG_MIB" \
        if="$IN/big" of="$dir/big" bs=1M conv=fsync
    drop_caches
    timed read "$name" "$r" do_dd "$OUT/logs/dd.log" "$BIG_MIB" if="$dir/big" of=/dev/null bs=1M
    timed small "$name" "$r" do_dd "$OUT/logs/dd.log" "$SMALL_COUNT" \
        if="$IN/small" of="$dir/small" bs=$SMALL_BS count="$SMALL_COUNT" conv=fsync

    # Correctness before rm, untimed: a fast wrong answer must not look like a win.
    check clone "$name" "$r" "dirty=$(git -C "$dir/redis" status --porcelain | wc -l)"
    check untar "$name" "$r" "$(tree_sig "$dir/untar")"
    cmp -s "$IN/big" "$dir/big" || mark_bad write "$name" "$r" content
    cmp -s "$IN/small" "$dir/small" || mark_bad small "$name" "$r" content
    local stored from
    if [ "$CUR_KIND" = memfs ]; then
        stored=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stored_bytes"])' \
            "$dir/.memfs/stats.json" 2>/dev/null || true)
        from=stats.json
    else
        stored=$(du -sb "$dir/redis" "$dir/untar" "$dir/big" "$dir/small" | awk '{ s += $1 } END { print s }')
        from=du
    fi

    timed rm "$name" "$r" rm -rf "$dir/redis" "$dir/untar" "$dir/big" "$dir/small"
    echo "$name,$r,$(server_peak_rss),$stored,$from" >>"$MEM"
    if ! unmount_target "$dir"; then
        echo "bench-phases: $name round $r did not unmount cleanly" >&2
        mark_bad rm "$name" "$r" unmount
    fi
    rm -f "$trace"
}

start=$(date +%s)
for r in $(seq "$ROUNDS"); do
    for ti in $(round_order "$r" ${#NAMES[@]}); do
        run_target "$ti" "$r"
    done
    echo "bench-phases: round $r/$ROUNDS done after $(( $(date +%s) - start )) s" >&2
done

python3 "$HERE/lib/phases_report.py" "$OUT"
bad=$(awk -F, 'NR > 1 && $6 != "ok"' "$RAW" | wc -l)
echo "bench-phases: $OUT/summary.md, phases.svg, raw.csv; $bad failed/bad rows; $(( $(date +%s) - start )) s" >&2
[ "$bad" -eq 0 ]
