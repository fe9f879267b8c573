#!/usr/bin/env bash
# The write-methods experiment: how many FUSE requests each way of writing a file
# costs on memfs, with and without the kernel's writeback cache.
#
# usage: workloads/write-methods/run.sh [--memfs PATH] [--mib N] [--no-writeback]
#            [--writeback] [--methods LIST] [--out DIR] [--timeout SEC] [--no-verify]
#
#   --memfs PATH    memfs binary (default /work/main/target/release/memfs). Copy it
#                   somewhere stable first if someone may rebuild while this runs.
#   --mib N         MiB each writer run writes (default 16)
#   --no-writeback  only the mode with --no-writeback-cache (default: both modes)
#   --writeback     only the default mode, with the writeback cache
#   --methods LIST  comma-separated subset of: big-fsync,big,chunks-fsync,buffered,
#                   per-line,append (default: all)
#   --out DIR       results directory (default /tmp/write-methods)
#   --timeout SEC   give up on a writer run after SEC seconds (default 600)
#   --no-verify     skip the content check (see below)
#
# For each cache mode and method: mount a fresh memfs with --trace DIR/MODE-METHOD.jsonl,
# run `writer METHOD MNT/out.txt MIB` (wall time of the writer process), umount, wait
# for memfs to exit (the trace is complete then), and count the trace's requests per op
# with count.py. Then, unless --no-verify, the same run again on an untraced mount,
# followed by sha256sum of the file against the expected text, so that the check's
# reads do not show up in the counts.
#
# Output in DIR: MODE-METHOD.jsonl (traces), logs/MODE-METHOD.log (memfs's stderr),
# runs.jsonl (count.py's per-run counts), results.md (Markdown tables, also printed),
# results.json (raw counts), write-methods.svg and, if rsvg-convert is installed,
# write-methods.png.
#
# Needs /dev/fuse, cc, python3; root or a user allowed to mount FUSE.
# Everything this script mounts is unmounted on exit, error or Ctrl-C.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MEMFS=/work/main/target/release/memfs
MIB=16
MODES=(writeback no-writeback)
METHODS=(big-fsync big chunks-fsync buffered per-line append)
OUT=/tmp/write-methods
TIMEOUT=600
VERIFY=1

die() { echo "write-methods: $*" >&2; exit 1; }
usage() { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --memfs) [ $# -ge 2 ] || die "--memfs needs a path"; MEMFS=$2; shift 2 ;;
        --mib) [ $# -ge 2 ] || die "--mib needs a number"; MIB=$2; shift 2 ;;
        --no-writeback) MODES=(no-writeback); shift ;;
        --writeback) MODES=(writeback); shift ;;
        --methods) [ $# -ge 2 ] || die "--methods needs a list"; IFS=, read -r -a METHODS <<<"$2"; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
        --no-verify) VERIFY=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "--mib wants a positive whole number"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout wants a positive whole number"
for m in "${METHODS[@]}"; do
    case $m in big-fsync|big|chunks-fsync|buffered|per-line|append) ;;
        *) die "unknown method '$m'" ;; esac
done
[ -x "$MEMFS" ] || die "no memfs binary at $MEMFS (cargo build --release, or --memfs PATH)"
MEMFS=$(realpath "$MEMFS")
[ -e /dev/fuse ] || die "no /dev/fuse"
for tool in cc python3 sha256sum timeout; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

mkdir -p "$OUT/logs" "$OUT/mnt"
OUT=$(realpath "$OUT")
[[ $OUT =~ [[:space:]] ]] && die "--out must not contain white space"
MNT=$OUT/mnt

# Whether something is mounted on $MNT. Reads /proc/self/mountinfo rather than running
# mountpoint(1), whose stat would show up in the trace as a getattr.
is_mounted() { awk -v m="$MNT" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }

is_mounted && die "$MNT is already a mount point (left over from an earlier run? umount it)"

# ------------------------------------------------------------------ cleanup

MEMFS_PID=""   # the memfs serving $MNT, while there is one
WRITER_PID=""  # the writer (under timeout), while it runs
MOUNTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [ -n "$WRITER_PID" ] && kill -0 "$WRITER_PID" 2>/dev/null; then
        kill -TERM "$WRITER_PID" 2>/dev/null || true
    fi
    if [ "$MOUNTED" = 1 ] || is_mounted; then
        umount -c "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    fi
    if [ -n "$MEMFS_PID" ]; then
        local i
        for i in $(seq 50); do kill -0 "$MEMFS_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$MEMFS_PID" 2>/dev/null; then
            echo "write-methods: memfs (pid $MEMFS_PID) still running; killing it" >&2
            kill -TERM "$MEMFS_PID" 2>/dev/null || true
            sleep 1
            kill -KILL "$MEMFS_PID" 2>/dev/null || true
        fi
        is_mounted && umount -l "$MNT" 2>/dev/null || true
    fi
    if [ -n "$WRITER_PID" ] && kill -0 "$WRITER_PID" 2>/dev/null; then
        kill -KILL "$WRITER_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------------ mount / umount

# mount_memfs MODE LOG [TRACE]: mounts a fresh memfs on $MNT and waits until it is ready.
mount_memfs() {
    local mode=$1 log=$2 trace=${3:-} args=()
    [ "$mode" = no-writeback ] && args+=(--no-writeback-cache)
    [ -n "$trace" ] && args+=(--trace "$trace")
    : >"$log"
    "$MEMFS" mount "$MNT" "${args[@]}" 2>>"$log" &
    MEMFS_PID=$!
    MOUNTED=1
    local i
    for i in $(seq 100); do
        if grep -qs '^memfs: mounted at' "$log" && is_mounted; then
            return 0
        fi
        kill -0 "$MEMFS_PID" 2>/dev/null || { cat "$log" >&2; die "memfs exited while mounting"; }
        sleep 0.1
    done
    cat "$log" >&2
    die "memfs did not report the mount within 10 s"
}

# umount_memfs: unmounts $MNT and waits for memfs to exit; fails if it does not exit 0.
# umount -c (no canonicalisation): otherwise umount(8)'s stat and statfs of the mount
# point would be traced too.
umount_memfs() {
    local i status=0
    for i in $(seq 20); do
        is_mounted || break # memfs may have unmounted itself (it does on SIGINT)
        umount -c "$MNT" 2>/dev/null && break
        [ "$i" = 20 ] && die "cannot umount $MNT: $(umount -c "$MNT" 2>&1)"
        sleep 0.25
    done
    MOUNTED=0
    for i in $(seq 300); do
        kill -0 "$MEMFS_PID" 2>/dev/null || break
        [ "$i" = 300 ] && die "memfs (pid $MEMFS_PID) still running 30 s after umount"
        sleep 0.1
    done
    wait "$MEMFS_PID" || status=$?
    MEMFS_PID=""
    [ "$status" = 0 ] || die "memfs exited with status $status after umount (see its log)"
}

# run_writer METHOD PATH: runs the writer; sets WALL_MS and WRITER_STATUS.
run_writer() {
    local t0 t1
    WRITER_STATUS=0
    t0=$EPOCHREALTIME
    # In the background, so that the EXIT trap knows its pid; `wait` still lets
    # Ctrl-C through to the trap.
    timeout "$TIMEOUT" "$WRITER" "$1" "$2" "$MIB" &
    WRITER_PID=$!
    wait "$WRITER_PID" || WRITER_STATUS=$?
    t1=$EPOCHREALTIME
    WRITER_PID=""
    WALL_MS=$(python3 -c "print(f'{($t1 - $t0) * 1000:.1f}')")
}

# ------------------------------------------------------------------ the runs

WRITER=$OUT/writer
cc -O2 -Wall -Wextra -o "$WRITER" "$HERE/writer.c"

EXPECTED=""
if [ "$VERIFY" = 1 ]; then
    "$WRITER" big "$OUT/expected.txt.tmp" "$MIB"
    EXPECTED=$(sha256sum <"$OUT/expected.txt.tmp" | cut -d' ' -f1)
    rm -f "$OUT/expected.txt.tmp"
fi

RUNS=$OUT/runs.jsonl
: >"$RUNS"
FAILED=0
echo "write-methods: $MIB MiB per run; memfs $MEMFS; results in $OUT" >&2
for mode in "${MODES[@]}"; do
    for method in "${METHODS[@]}"; do
        trace=$OUT/$mode-$method.jsonl
        log=$OUT/logs/$mode-$method.log
        rm -f "$trace"
        mount_memfs "$mode" "$log" "$trace"
        run_writer "$method" "$MNT/out.txt"
        wall_ms=$WALL_MS wstatus=$WRITER_STATUS
        umount_memfs
        status=ok
        [ "$wstatus" = 0 ] || status="writer exit $wstatus"
        [ "$wstatus" = 124 ] && status="writer timed out after ${TIMEOUT}s"
        # memfs's stderr beyond the "mounted" line: warnings worth a look.
        if grep -v '^memfs: mounted at' "$log" | grep -q .; then
            echo "write-methods: $mode $method: memfs said:" >&2
            grep -v '^memfs: mounted at' "$log" | head -n 20 | sed 's/^/    /' >&2
        fi

        verified=""
        if [ "$VERIFY" = 1 ] && [ "$wstatus" = 0 ]; then
            vlog=$OUT/logs/$mode-$method.verify.log
            mount_memfs "$mode" "$vlog"
            run_writer "$method" "$MNT/out.txt"
            got=""
            if [ "$WRITER_STATUS" = 0 ]; then
                got=$(sha256sum <"$MNT/out.txt" | cut -d' ' -f1) || got="unreadable"
            fi
            umount_memfs
            if [ "$WRITER_STATUS" != 0 ]; then
                verified="not checked (writer exit $WRITER_STATUS on the second run)"
            elif [ "$got" = "$EXPECTED" ]; then
                verified=yes
            else
                verified="MISMATCH"
            fi
        fi
        [ "$status" = ok ] && { [ -z "$verified" ] || [ "$verified" = yes ]; } || FAILED=1

        python3 "$HERE/count.py" count "$trace" --mode "$mode" --method "$method" \
            --wall-ms "$wall_ms" --status "$status" --verified "$verified" >>"$RUNS"
        printf 'write-methods: %-12s %-12s %8s ms  %s%s\n' "$mode" "$method" "$wall_ms" \
            "$status" "${verified:+, content $verified}" >&2
    done
done

python3 "$HERE/count.py" report "$RUNS" --mib "$MIB" --out "$OUT" --kernel "$(uname -r)"
if command -v rsvg-convert >/dev/null; then
    rsvg-convert -o "$OUT/write-methods.png" "$OUT/write-methods.svg"
else
    echo "write-methods: rsvg-convert not found (apt-get install librsvg2-bin); no PNG" >&2
fi
echo "write-methods: wrote $OUT/results.md, results.json, write-methods.svg" >&2
[ "$FAILED" = 0 ] || die "some runs failed; see the status column"
