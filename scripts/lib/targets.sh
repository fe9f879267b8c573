# Mounting the file systems a benchmark compares, one at a time, and tearing them down on
# any exit. Sourced by scripts/bench-settings.sh and scripts/bench-phases.sh.
#
# The caller sets TAG (its name, for messages) and MEMFS_BIN (the default memfs binary),
# and calls targets_cleanup from its EXIT trap. A target is NAME plus a SPEC:
#   NAME tmpfs                 mount -t tmpfs (the SPEC is ignored)
#   SPEC passthrough_hp[=PATH] [OPTIONS]
#                              libfuse's passthrough_hp (PATH, default: what
#                              scripts/passthrough-hp.sh --check prints) serving a fresh
#                              tmpfs directory: passthrough_hp --foreground OPTIONS SRC DIR
#   SPEC [bin=PATH] [OPTIONS]  memfs (PATH, default MEMFS_BIN): memfs mount DIR OPTIONS
# Only one target is mounted at a time: mount_target, run the workload, unmount_target.

TARGETS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMPFS_SIZE=${TMPFS_SIZE:-8g}

MOUNTED=()     # mount points mounted by us, in mount order
PIDS=()        # server processes started and not yet reaped
CUR_PID=""     # the current target's server process (memfs or passthrough_hp); "" for tmpfs
CUR_KIND=""    # tmpfs, memfs or passthrough_hp
CUR_SOURCE=""  # passthrough_hp's backing tmpfs directory

# round_order ROUND COUNT: the target indices in the order round ROUND runs them: it starts
# at the ROUND-th and wraps. A target measured right after another's heavy run comes out
# 5-20% slower, so no target keeps one position; round 1 starts with target 0 (tmpfs,
# whose trees the others are checked against).
round_order() {
    local k
    for ((k = 0; k < $2; k++)); do echo $(( (k + $1 - 1) % $2 )); done
}

targets_cleanup() {
    local i p j
    set +e
    # Innermost first: a FUSE mount before the tmpfs it serves.
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        if mountpoint -q "${MOUNTED[$i]}"; then
            umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null
        fi
    done
    for p in "${PIDS[@]}"; do
        for j in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    MOUNTED=()
    PIDS=()
    CUR_PID=""
    CUR_SOURCE=""
}

# target_kind NAME SPEC: prints tmpfs, passthrough_hp or memfs.
target_kind() {
    if [ "$1" = tmpfs ]; then
        echo tmpfs
    elif [[ $2 == passthrough_hp || $2 == passthrough_hp[=\ ]* ]]; then
        echo passthrough_hp
    else
        echo memfs
    fi
}

# split_spec SPEC PREFIX DEFAULT: sets SPEC_BIN (PREFIX=PATH as the first word, else
# DEFAULT) and SPEC_OPTS (the remaining words).
split_spec() {
    local spec=$1 prefix=$2
    SPEC_BIN=$3
    SPEC_OPTS=$spec
    local first=${spec%% *}
    if [[ $first == "$prefix" || $first == "$prefix="* ]]; then
        [[ $first == "$prefix="* ]] && SPEC_BIN=${first#"$prefix"=}
        [[ $spec == *" "* ]] && SPEC_OPTS=${spec#* } || SPEC_OPTS=""
    fi
}

# server_pid PID: the server's own process. `setsid -w` execs in place when its caller
# leads no process group (the usual case), but forks when it does: then take its child.
server_pid() {
    local pid=$1 child i
    for i in $(seq 20); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = setsid ] || break
        child=$(cat /proc/"$pid"/task/*/children 2>/dev/null | awk '{ print $1; exit }')
        if [ -n "$child" ]; then echo "$child"; return; fi
        sleep 0.05
    done
    echo "$pid"
}

# passthrough_hp_bin: the built passthrough_hp, or fail with how to build it.
passthrough_hp_bin() {
    "$TARGETS_LIB_DIR/../passthrough-hp.sh" --check
}

# mount_target NAME SPEC DIR LOG: mount a fresh, empty target at DIR; the server's stderr
# goes to LOG.
mount_target() {
    local name=$1 spec=$2 dir=$3 log=$4 i what
    CUR_KIND=$(target_kind "$name" "$spec")
    CUR_PID=""
    CUR_SOURCE=""
    rm -rf "$dir"
    mkdir -p "$dir"
    case $CUR_KIND in
        tmpfs)
            mount -t tmpfs -o "size=$TMPFS_SIZE" tmpfs "$dir"
            MOUNTED+=("$dir")
            return 0
            ;;
        passthrough_hp)
            split_spec "$spec" passthrough_hp ""
            [ -n "$SPEC_BIN" ] || SPEC_BIN=$(passthrough_hp_bin) || return 1
            CUR_SOURCE=$dir.source
            rm -rf "$CUR_SOURCE"
            mkdir -p "$CUR_SOURCE"
            mount -t tmpfs -o "size=$TMPFS_SIZE" tmpfs "$CUR_SOURCE"
            MOUNTED+=("$CUR_SOURCE")
            what="passthrough_hp $SPEC_OPTS"
            # Own session: a Ctrl-C meant for the script must not reach the server, which
            # would detach its busy mount under the running workload; cleanup unmounts it.
            # shellcheck disable=SC2086 # options are meant to split into words
            setsid -w "$SPEC_BIN" --foreground $SPEC_OPTS "$CUR_SOURCE" "$dir" \
                >"$log" 2>&1 </dev/null &
            ;;
        memfs)
            split_spec "$spec" bin "$MEMFS_BIN"
            what="memfs $SPEC_OPTS"
            # shellcheck disable=SC2086
            setsid -w "$SPEC_BIN" mount "$dir" $SPEC_OPTS 2>"$log" </dev/null &
            ;;
    esac
    CUR_PID=$!
    PIDS+=("$CUR_PID")
    MOUNTED+=("$dir")
    for i in $(seq 200); do
        if mountpoint -q "$dir" && { [ "$CUR_KIND" != memfs ] || grep -qs "mounted at" "$log"; }; then
            CUR_PID=$(server_pid "$CUR_PID")
            return 0
        fi
        kill -0 "$CUR_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "$TAG: $what did not mount at $dir; log:" >&2
    cat "$log" >&2
    return 1
}

# server_peak_rss: the current server's peak resident memory so far (VmHWM) in bytes;
# empty for tmpfs.
server_peak_rss() {
    [ -n "$CUR_PID" ] || return 0
    awk '/^VmHWM:/ { printf "%d\n", $2 * 1024 }' "/proc/$CUR_PID/status" 2>/dev/null || true
}

# unmount_target DIR: unmount and wait for the server's exit; fails if it exits non-zero
# or has to be killed.
unmount_target() {
    local dir=$1 i rc=0 p
    for i in $(seq 20); do
        umount "$dir" 2>/dev/null && break
        sleep 0.25
    done
    if mountpoint -q "$dir"; then
        echo "$TAG: $dir stays busy; lazy unmount" >&2
        umount -l "$dir"
        rc=1
    fi
    for p in "${PIDS[@]}"; do
        for i in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$p" 2>/dev/null; then
            echo "$TAG: $CUR_KIND $p still running 10 s after umount; killing" >&2
            kill "$p"
            rc=1
        fi
        wait "$p" || { rc=$?; echo "$TAG: $CUR_KIND exited $rc" >&2; }
    done
    PIDS=()
    if [ -n "$CUR_SOURCE" ]; then
        umount "$CUR_SOURCE" 2>/dev/null || umount -l "$CUR_SOURCE"
        rm -rf "$CUR_SOURCE"
    fi
    MOUNTED=()
    CUR_PID=""
    CUR_SOURCE=""
    rm -rf "$dir"
    return $rc
}
