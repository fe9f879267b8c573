#!/usr/bin/env bash
# Runs memfs's whole test suite: unit, property, and integration tests that mount real FUSE
# file systems in temp dirs. Installs what the tests need when it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's redis-server package starts a server on port 6379 at install; the tests start
# their own on free ports, so the distribution's is stopped and kept from starting again.
stop_distribution_redis() {
    if [ "$(id -u)" -eq 0 ] && [ -e /etc/init.d/redis-server ]; then
        service redis-server stop >/dev/null 2>&1 || true
        if command -v systemctl >/dev/null; then
            systemctl disable --now redis-server >/dev/null 2>&1 || true
        fi
    fi
}

need=()
command -v git >/dev/null || need+=(git)
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v python3 >/dev/null || need+=(python3) # tests/versions.rs writes files with it
command -v stress-ng >/dev/null || need+=(stress-ng) # tests/seek_cached.rs runs its seek stressor
[ -x /usr/bin/time ] || need+=(time)                # tests/trace.rs measures peak memory with it
# tests/redis_store.rs and the --store runs below start their own Redis Cluster.
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
# tests/bench.rs: bench.py draws its plots with matplotlib, which comes from PyPI into a venv
# of our own (kept between runs under ~/.cache) that goes first on PATH for the tests.
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/memfs/test-venv"
if [ ! -x "$VENV/bin/python3" ] && ! python3 -c 'import ensurepip' 2>/dev/null; then
    need+=(python3-venv) # Debian's python3 makes venvs only with this
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: missing ${need[*]}; install them (apt-get install -y ${need[*]})" >&2
        exit 1
    fi
    echo "test.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
stop_distribution_redis
# tests/trace_export.rs reads the Parquet export back with pyarrow and pandas.
if ! "$VENV/bin/python3" -c 'import matplotlib, pyarrow, pandas' 2>/dev/null; then
    echo "test.sh: installing matplotlib, pyarrow and pandas into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check matplotlib pyarrow pandas
fi
export PATH="$VENV/bin:$PATH"
if [ ! -e /dev/fuse ]; then
    echo "test.sh: /dev/fuse is missing: the integration tests need FUSE" >&2
    exit 1
fi

# tests/fsx.rs runs fsx-rs (the File System eXerciser) from crates.io. It is installed once
# per machine under CARGO_HOME, which survives between runs, and handed to the test as $FSX.
FSX_VERSION=0.3.2
fsx_root="${CARGO_HOME:-$HOME/.cargo}"
FSX="$(command -v fsx || true)"
[ -n "$FSX" ] || FSX="$fsx_root/bin/fsx"
if ! "$FSX" --version 2>/dev/null | grep -qx "fsx $FSX_VERSION"; then
    echo "test.sh: installing fsx $FSX_VERSION into $fsx_root/bin (once per machine)"
    cargo install --quiet --locked fsx --version "$FSX_VERSION" --root "$fsx_root"
    FSX="$fsx_root/bin/fsx"
fi
export FSX

# FUSE over io_uring (issue 14, `memfs mount --io-uring`): the kernel's switch is off by
# default; root turns it on. memfs then serves on rings unless told otherwise, so the suite
# runs on /dev/fuse by name first, and the tests that mount run a second time on rings
# (tests/common reads MEMFS_TEST_TRANSPORT). A kernel without the feature runs the suite on
# /dev/fuse only, and tests/uring.rs says it skipped.
enable_rings() {
    local switch=/sys/module/fuse/parameters/enable_uring
    if [ -e "$switch" ] && [ "$(cat "$switch")" != Y ] && [ "$(id -u)" -eq 0 ]; then
        echo 1 >"$switch"
    fi
    if [ "$(cat "$switch" 2>/dev/null)" != Y ]; then
        echo "test.sh: FUSE over io_uring is not offered ($switch missing or off):" \
            "the suite runs on /dev/fuse only" >&2
        return 1
    fi
}
rings_run() {
    local mounted=(async_commits async_mount bench enospc fsx lifecycle model panic posix security
        seek_cached smoke snapshots stress trace trace_export uring versions workloads)
    MEMFS_TEST_TRANSPORT=io-uring cargo test "${mounted[@]/#/--test=}" -- --color never "$@"
}
rings=0
enable_rings && rings=1

cargo build --all-targets --quiet
MEMFS_TEST_TRANSPORT=dev-fuse cargo test --all-targets -- --color never "$@"
[ "$rings" -eq 0 ] || rings_run "$@"
# The POSIX and workload tests again with every mount's chunks on a Redis Cluster (one per
# test binary, started by tests/common/cluster.rs and gone with it).
MEMFS_TEST_STORE=cluster cargo test --test posix --test workloads -- --color never "$@"
# The model check of the namespace's locking, with shuttle's locks in place of parking_lot's.
cargo test --features shuttle --test shuttle_namespace -- --color never
# Lint: the code stays clippy-clean, warnings counted as errors.
cargo clippy --all-targets --quiet -- -D warnings
# The API docs build without warnings (a public doc that links to a private item, a broken
# link).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
