#!/usr/bin/env bash
# The main job, end to end: build memfs, mount it in a temp dir, clone a real C project into
# it with git, snapshot the tree, configure and build it with make -j2, run what was built,
# show the tree with its descendant counts, diff the snapshot against what the build left,
# and unmount. Installs what is missing (needs root for apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf '\n== %s\n' "$*"; }

need=()
command -v git >/dev/null || need+=(git)
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
command -v fusermount3 >/dev/null || need+=(fuse3)
command -v help2man >/dev/null || need+=(help2man) # GNU hello makes its man page with it
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

say "building memfs (release)"
cargo build --release --quiet
memfs="$repo/target/release/memfs"

work=$(mktemp -d /tmp/memfs-demo.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
pid=""
cleanup() {
    if grep -q " $mnt fuse" /proc/mounts; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# What the trace says: the programs that kept memfs busiest, then the trace exported to
# Parquet and drawn as a picture.
show_trace() {
    say "which programs asked what (memfs trace summary --by process, top 12 by time)"
    "$memfs" trace summary "$trace" --by process | head -13
    say "the trace as data"
    "$memfs" trace export "$trace" --parquet "$results/trace.parquet"
    "$memfs" trace plot "$trace" --svg "$results/sessions.svg"
    echo "trace:   $trace ($(du -h "$trace" | cut -f1), zstd JSON Lines; memfs trace summary|sessions|show read it)"
    echo "parquet: $results/trace.parquet ($(du -h "$results/trace.parquet" | cut -f1); pandas.read_parquet, DuckDB, polars)"
    echo "plot:    $results/sessions.svg"
}

# The project: GNU hello from Debian's source packages (a real autotools C project), made
# into a git repository outside the mount. Without deb-src access, a small C program.
say "preparing the source repository"
src="$work/src"
mkdir -p "$src"
if ! ls /etc/apt/sources.list.d/*.sources 2>/dev/null | xargs grep -qs 'deb-src'; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
            > /etc/apt/sources.list.d/memfs-demo-src.sources
        apt-get update -qq || true
    fi
fi
if (cd "$work" && apt-get source --download-only hello >/dev/null 2>&1); then
    tar -xzf "$work"/hello_*.orig.tar.gz -C "$src" --strip-components=1
    # A git checkout gives files fresh mtimes in checkout order, so make would regenerate
    # autotools outputs and man pages: give every tracked file one mtime first.
    build="git ls-files -z | xargs -0 touch -h -d 2020-01-01 && ./configure --quiet && make -j2 --quiet"
    run="./hello"
else
    echo "(apt-get source hello failed: using a small generated C program)"
    printf '#include <stdio.h>\nint main(void){puts("Hello, world!");return 0;}\n' > "$src/hello.c"
    printf 'hello: hello.c\n\tcc -O2 -o $@ $<\n' > "$src/Makefile"
    build="make -j2"
    run="./hello"
fi
git -C "$src" init -q
git -C "$src" add -A -f
git -C "$src" -c user.name=demo -c user.email=demo@localhost commit -q -m import

# The trace and its Parquet export outlive the demo's temp dir.
results="${MEMFS_DEMO_RESULTS:-/tmp/memfs-demo-results}"
mkdir -p "$results"
trace="$results/trace.jsonl.zst"

say "mounting memfs at $mnt, tracing every request to $trace"
"$memfs" mount "$mnt" --trace "$trace" &
pid=$!
for _ in $(seq 100); do grep -q " $mnt fuse" /proc/mounts && break; sleep 0.05; done

say "git clone --no-local into memfs"
time git clone -q --no-local "$src" "$mnt/hello"

say "snapshot of the whole tree before the build (memfs snapshot create)"
"$memfs" snapshot create "$mnt" after-clone

say "configure and make -j2 on memfs"
time (cd "$mnt/hello" && eval "$build")

say "running what was built"
(cd "$mnt/hello" && $run)

say "git status on memfs (expect only build products)"
git -C "$mnt/hello" status --short | head -5

say "descendant counts (memfs tree --depth 2)"
"$memfs" tree "$mnt" --depth 2 | head -20

say "versions and deduplicated chunks (memfs stats)"
"$memfs" stats "$mnt" | sed '/^chunk sizes:/,$d' # the histograms: memfs stats --json

say "what the build changed (memfs diff of the snapshot and the live tree)"
snap="$mnt/.memfs/snapshots/after-clone/hello"
changes=$("$memfs" diff "$snap" "$mnt/hello")
printf '%s\n' "$changes" | awk 'NF {n[$1]++} END {printf "%d added, %d deleted, %d modified\n", n["A"], n["D"], n["M"]}'
printf '%s\n' "$changes" | sed -n '1,6p'
visited=$("$memfs" diff --json "$snap" "$mnt/hello" | sed -n 's/.*"visited":\([0-9]*\).*/\1/p')
entries() { "$memfs" tree "$1" --depth 0 | sed -n 's/.*\[\([0-9]*\)\]$/\1/p'; }
echo "visited $visited of the $(( $(entries "$snap") + $(entries "$mnt/hello") + 2 )) nodes of the two trees"

say "unmounting"
umount "$mnt"
wait "$pid"
pid=""
echo "memfs exited cleanly"

show_trace

