#!/usr/bin/env bash
# Compare memfs kernel settings against tmpfs on a few file-system-heavy workloads.
#
# usage: scripts/bench-settings.sh [-b MEMFS_BIN] [-r ROUNDS] [-o OUT_DIR] [-w WORKLOADS] [VARIANT...]
#
#   -b MEMFS_BIN  memfs binary (default: target/release/memfs). Copy it somewhere
#                 stable first if someone may rebuild while the benchmark runs.
#   -r ROUNDS     rounds (default 5). Each round runs every target once, so
#                 machine noise spreads over all targets; round r starts at the
#                 r-th target and wraps (what runs right after a heavy run is
#                 measured 5-20% slower, so no target keeps one position).
#   -o OUT_DIR    results directory (default /tmp/bench-settings/run-TIMESTAMP);
#                 gets raw.csv (one row per measurement), summary.txt, setup.txt
#                 and logs/ (memfs's stderr per mount).
#   -w WORKLOADS  comma-separated subset of: clone,build,untar-redis,untar-pg,untar-pg-bz2
#                 (default: all but build that have their input on this machine).
#   VARIANT       NAME:MEMFS-OPTIONS, e.g. 'nowb:--no-writeback-cache' or
#                 'ttl0:--ttl 0'; 'default:' is memfs without options. Options may
#                 start with 'bin=PATH' to run another memfs binary for that target,
#                 so two builds compare in one interleaved run, e.g.
#                 'before:bin=/tmp/memfs-old' 'after:'. 'NAME:passthrough_hp' runs
#                 libfuse's passthrough_hp over a tmpfs (scripts/passthrough-hp.sh
#                 builds it; see scripts/lib/targets.sh). The target
#                 'tmpfs' (mount -t tmpfs) is always there, first in round 1 (its
#                 trees are the reference), and is the baseline.
#                 '{trace}' in the options becomes a fresh trace file per run, deleted
#                 after it (e.g. 'traced:--trace {trace}').
#                 Without variants: default nowb ttl0 noplus t1 t4 noclone w128k.
#
# Workloads, each on a fresh mount of each target:
#   clone         git clone -q --no-local $REDIS_REPO DIR/redis
#   build         the clone above, then make -j$(nproc) in it (recorded as clone-b and
#                 build; the build is checked by running the redis-server it made)
#   untar-redis   tar -xzf $REDIS_TGZ -C DIR, then the walk below twice
#   untar-pg      tar -xf  of the PostgreSQL 15 orig tarball decompressed once
#                 up front (so bzip2's CPU time does not hide the file system),
#                 then the walk twice
#   untar-pg-bz2  tar -xjf of the PostgreSQL 15 .orig.tar.bz2 as shipped
#   walk-*        find DIR -type f -print0 | xargs -0 stat --format=%s >/dev/null;
#                 the first run is recorded as walk1-*, the second (warm) as walk-*
#   *:sync        sync -f DIR right after a write workload (dirty data that the
#                 workload's own time did not include)
# Every measurement is wall time from date +%s%N. The untarred trees are checked
# (file count and total bytes) against tmpfs's; a mismatch marks the row BAD.
#
# Inputs (override by environment): REDIS_REPO=/work/srccache/redis-src,
# REDIS_TGZ=/work/srcpkgs/redis_7.0.15.orig.tar.gz, PG_ARCHIVE=first
# /work/srcpkgs/postgresql-*.orig.tar.{bz2,gz,xz}. To fetch PostgreSQL's source:
#   cd /work/srcpkgs && apt-get source --download-only postgresql-15
# (if the newest version 404s, name one that apt-cache showsrc lists: postgresql-15=VERSION).
#
# Needs root (mount -t tmpfs, FUSE mounts) and /dev/fuse.

set -euo pipefail

BIN=target/release/memfs
ROUNDS=5
OUT=""
WORKLOADS=""
while getopts "b:r:o:w:h" opt; do
    case $opt in
        b) BIN=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        o) OUT=$OPTARG ;;
        w) WORKLOADS=$OPTARG ;;
        h) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-b BIN] [-r ROUNDS] [-o OUT] [-w WORKLOADS] [NAME:OPTS...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
    set -- "default:" "nowb:--no-writeback-cache" "ttl0:--ttl 0" "noplus:--no-readdirplus" \
        "t1:--threads 1" "t4:--threads 4" "noclone:--no-clone-fd" "w128k:--max-write 131072"
fi

REDIS_REPO=${REDIS_REPO:-/work/srccache/redis-src}
REDIS_TGZ=${REDIS_TGZ:-/work/srcpkgs/redis_7.0.15.orig.tar.gz}
if [ -z "${PG_ARCHIVE:-}" ]; then
    PG_ARCHIVE=$(ls /work/srcpkgs/postgresql-*.orig.tar.* 2>/dev/null | grep -E '\.(bz2|gz|xz)$' | sort -V | tail -n1 || true)
fi

die() { echo "bench-settings: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (tmpfs and FUSE mounts)"
[ -x "$BIN" ] || die "no memfs binary at $BIN (cargo build --release, or -b PATH)"
BIN=$(realpath "$BIN")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number"

OUT=${OUT:-/tmp/bench-settings/run-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs" "$OUT/mnt" "$OUT/cache"
OUT=$(realpath "$OUT")
RAW=$OUT/raw.csv

# --- workloads -------------------------------------------------------------
if [ -z "$WORKLOADS" ]; then
    WORKLOADS="clone,untar-redis"
    if [ -n "$PG_ARCHIVE" ] && [ -f "$PG_ARCHIVE" ]; then
        WORKLOADS+=",untar-pg,untar-pg-bz2"
    else
        echo "bench-settings: no PostgreSQL tarball in /work/srcpkgs: skipping untar-pg*" >&2
    fi
fi
IFS=, read -r -a WL <<<"$WORKLOADS"
PG_TAR=""
for w in "${WL[@]}"; do
    case $w in
        clone | build) [ -d "$REDIS_REPO" ] || die "no $REDIS_REPO" ;;
        untar-redis) [ -f "$REDIS_TGZ" ] || die "no $REDIS_TGZ" ;;
        untar-pg | untar-pg-bz2) [ -f "$PG_ARCHIVE" ] || die "no PostgreSQL tarball (PG_ARCHIVE)" ;;
        *) die "unknown workload $w" ;;
    esac
done
if [[ ",$WORKLOADS," == *,untar-pg,* ]]; then
    PG_TAR=$OUT/cache/$(basename "${PG_ARCHIVE%.*}")
    echo "decompressing $PG_ARCHIVE -> $PG_TAR" >&2
    case $PG_ARCHIVE in
        *.bz2) bzip2 -dc "$PG_ARCHIVE" >"$PG_TAR" ;;
        *.gz) gzip -dc "$PG_ARCHIVE" >"$PG_TAR" ;;
        *.xz) xz -dc "$PG_ARCHIVE" >"$PG_TAR" ;;
    esac
fi

# --- targets ---------------------------------------------------------------
NAMES=(tmpfs)
OPTS=("")
for v in "$@"; do
    [[ $v == *:* ]] || die "variant '$v' is not NAME:OPTIONS"
    name=${v%%:*}
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad variant name '$name'"
    [ "$name" != tmpfs ] || continue
    NAMES+=("$name")
    OPTS+=("${v#*:}")
done

# --- mounting, with cleanup on any exit -----------------------------------
TAG=bench-settings
MEMFS_BIN=$BIN
# shellcheck source=scripts/lib/targets.sh
. "$(dirname "$0")/lib/targets.sh"
on_exit() { targets_cleanup; rm -rf "$OUT/cache" "$OUT/mnt"; }
trap on_exit EXIT
trap 'echo "bench-settings: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# --- measuring -------------------------------------------------------------
echo "workload,target,round,ms,status" >"$RAW"
LAST_STATUS=ok
# timed WORKLOAD TARGET ROUND CMD...: run CMD, append its wall time to raw.csv.
timed() {
    local wl=$1 target=$2 round=$3 t0 t1 rc=0
    shift 3
    t0=$(date +%s%N)
    "$@" || rc=$?
    t1=$(date +%s%N)
    LAST_STATUS=ok
    [ $rc -eq 0 ] || LAST_STATUS="exit$rc"
    echo "$wl,$target,$round,$(( (t1 - t0) / 1000 )),$LAST_STATUS" | awk -F, -v OFS=, '{ $4 = sprintf("%.1f", $4 / 1000); print }' >>"$RAW"
    [ $rc -eq 0 ] || echo "bench-settings: $wl on $target round $round failed ($LAST_STATUS)" >&2
}
mark_bad() { # mark_bad WORKLOAD TARGET ROUND REASON: flag that row in raw.csv
    awk -F, -v OFS=, -v w="$1" -v t="$2" -v r="$3" -v why="BAD-$4" \
        '$1 == w && $2 == t && $3 == r && $5 == "ok" { $5 = why } { print }' "$RAW" >"$RAW.tmp"
    mv "$RAW.tmp" "$RAW"
}

do_clone() { git clone -q --no-local "$REDIS_REPO" "$1/redis"; }
do_build() { make -C "$1/redis" -j"$(nproc)" >"$2" 2>&1; }
do_untar() { tar -x"$2"f "$3" -C "$1"; }
do_walk() { find "$1" -type f -print0 | xargs -0 stat --format=%s >/dev/null; }
tree_sig() { # "FILES BYTES" under DIR
    find "$1" -type f -print0 | xargs -0 stat --format=%s | awk '{ n++; s += $1 } END { print n + 0, s + 0 }'
}
clone_sig() { git -C "$1/redis" status --porcelain | wc -l; }
declare -A EXPECT

check() { # check WORKLOAD TARGET ROUND SIG: compare to the first target's signature
    local key=$1 sig=$4
    if [ -z "${EXPECT[$key]:-}" ]; then
        EXPECT[$key]=$sig
    elif [ "${EXPECT[$key]}" != "$sig" ]; then
        echo "bench-settings: $key on $2 round $3: got '$sig', expected '${EXPECT[$key]}'" >&2
        mark_bad "$1" "$2" "$3" content
    fi
}

run_one() { # run_one WORKLOAD TARGET-INDEX ROUND
    local wl=$1 ti=$2 r=$3 name=${NAMES[$2]} opts=${OPTS[$2]}
    local dir=$OUT/mnt/$name log=$OUT/logs/$name-r$r-$wl.log
    local trace=$OUT/logs/$name-r$r-$wl.trace.jsonl
    opts=${opts//\{trace\}/$trace}
    if ! mount_target "$name" "$opts" "$dir" "$log"; then
        echo "$wl,$name,$r,,mountfail" >>"$RAW"
        targets_cleanup
        return 0
    fi
    case $wl in
        clone)
            timed clone "$name" "$r" do_clone "$dir"
            [ "$LAST_STATUS" != ok ] || check clone "$name" "$r" "dirty=$(clone_sig "$dir")"
            timed clone:sync "$name" "$r" sync -f "$dir"
            ;;
        build)
            timed clone-b "$name" "$r" do_clone "$dir"
            timed build "$name" "$r" do_build "$dir" "$OUT/logs/$name-r$r-make.log"
            [ "$LAST_STATUS" != ok ] || check build "$name" "$r" \
                "$("$dir/redis/src/redis-server" --version | grep -o 'v=[0-9.]*')"
            ;;
        untar-redis | untar-pg | untar-pg-bz2)
            local archive flag tree=${wl#untar-}
            case $wl in
                untar-redis) archive=$REDIS_TGZ flag=z ;;
                untar-pg) archive=$PG_TAR flag="" ;;
                untar-pg-bz2) archive=$PG_ARCHIVE flag=j; [[ $archive == *.bz2 ]] || flag=a ;;
            esac
            timed "$wl" "$name" "$r" do_untar "$dir" "$flag" "$archive"
            local ok=$LAST_STATUS
            timed "$wl:sync" "$name" "$r" sync -f "$dir"
            if [ "$wl" != untar-pg-bz2 ]; then
                timed "walk1-$tree" "$name" "$r" do_walk "$dir"
                timed "walk-$tree" "$name" "$r" do_walk "$dir"
            fi
            [ "$ok" != ok ] || check "$wl" "$name" "$r" "$(tree_sig "$dir")"
            ;;
    esac
    if ! unmount_target "$dir"; then
        echo "$wl,$name,$r,,unmountfail" >>"$RAW"
    fi
    rm -f "$trace"
}

{
    echo "memfs: $BIN ($(sha256sum "$BIN" | cut -c1-12))"
    echo "host: $(uname -r), $(nproc) CPUs; rounds: $ROUNDS; workloads: $WORKLOADS"
    echo "pg archive: ${PG_ARCHIVE:-none}"
    for i in "${!NAMES[@]}"; do echo "target ${NAMES[$i]}: ${OPTS[$i]:-(none)}"; done
} | tee "$OUT/setup.txt" >&2

start=$(date +%s)
for r in $(seq "$ROUNDS"); do
    for ti in $(round_order "$r" ${#NAMES[@]}); do
        for wl in "${WL[@]}"; do
            run_one "$wl" "$ti" "$r"
        done
    done
    echo "round $r/$ROUNDS done after $(( $(date +%s) - start )) s" >&2
done

# --- summary: median per (workload, target), ratio to tmpfs's median -------
summarize() {
    awk -F, -v targets="${NAMES[*]}" '
    NR == 1 { next }
    {
        if (!($1 in seen)) { seen[$1] = 1; wls[++nw] = $1 }
        if ($5 == "ok") { k = $1 SUBSEP $2; n[k]++; v[k, n[k]] = $4 }
        else { bad[$1 SUBSEP $2]++ }
    }
    function median(k,   i, j, t, m, a) {
        m = n[k]; if (m == 0) return ""
        for (i = 1; i <= m; i++) a[i] = v[k, i] + 0
        for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        nt = split(targets, T, " ")
        printf "median wall time in ms (x = ratio to tmpfs median; ! = failed runs)\n"
        printf "%-18s", "workload"
        for (t = 1; t <= nt; t++) printf " %15s", T[t]
        printf "\n"
        for (w = 1; w <= nw; w++) {
            base = median(wls[w] SUBSEP "tmpfs")
            printf "%-18s", wls[w]
            for (t = 1; t <= nt; t++) {
                k = wls[w] SUBSEP T[t]; m = median(k)
                if (m == "") cell = "-"
                else if (T[t] == "tmpfs" || base <= 0) cell = sprintf("%.0f", m)
                else cell = sprintf("%.0f %5.2fx", m, m / base)
                if (bad[k]) cell = cell "!" bad[k]
                printf " %15s", cell
            }
            printf "\n"
        }
    }' "$RAW"
}
summarize | tee "$OUT/summary.txt"
bad=$(awk -F, 'NR > 1 && $5 != "ok"' "$RAW" | wc -l)
echo "raw times: $RAW; summary: $OUT/summary.txt; $bad failed/bad rows; $(( $(date +%s) - start )) s" >&2
