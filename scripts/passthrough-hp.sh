#!/usr/bin/env bash
# Build libfuse's passthrough_hp example (the peer in scripts/bench-phases.sh) and print
# the binary's path on stdout; progress goes to stderr.
#
# usage: scripts/passthrough-hp.sh [--check]
#
#   --check   only print the path of an already built binary; exit 1 (and build
#             nothing) when there is none.
#
# The source is Debian's fuse3 source package (libfuse 3.14 with Debian's patches,
# unpacked by dpkg-source). It is taken from
# $FUSE3_SRCPKGS (default /work/srcpkgs) when a fuse3_*.dsc is there, else fetched with
# `apt-get source --download-only fuse3`, adding a deb-src entry (a copy of
# /etc/apt/sources.list.d/debian.sources with `Types: deb-src`) and running
# `apt-get update` once if apt has none.
#
# Everything lives in $MEMFS_BENCH_CACHE/passthrough_hp (default
# /var/tmp/memfs-bench/passthrough_hp), outside the repository; a built binary is reused.
# The build is
#   meson setup build -Dexamples=true -Dcpp_args=-DHAVE_UTIMENSAT \
#       -Dutils=false -Dtests=false -Ddefault_library=static
#   ninja -C build example/passthrough_hp
# -Dutils=false spares the udev dependency (fusermount3 is not needed: root mounts
# directly), and the static libfuse makes the binary independent of the system's libfuse.
# Build dependencies, installed by name when missing: meson ninja-build g++ pkg-config.
#
# HAVE_UTIMENSAT: passthrough_hp.cc sets times on a file without an open handle
# (utimensat on /proc/self/fd/N) only when it is defined, and it does not include the
# config header meson writes; without it tar's and `touch`'s setting of times fails.

set -euo pipefail

CHECK_ONLY=0
case ${1:-} in
    --check) CHECK_ONLY=1 ;;
    "") ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

CACHE=${MEMFS_BENCH_CACHE:-/var/tmp/memfs-bench}/passthrough_hp
SRCPKGS=${FUSE3_SRCPKGS:-/work/srcpkgs}
BIN=$CACHE/passthrough_hp
say() { echo "passthrough-hp: $*" >&2; }
die() { say "$*"; exit 1; }

if [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi
[ $CHECK_ONLY -eq 0 ] || die "not built yet ($BIN); run $0 to build it"
[ "$(id -u)" -eq 0 ] || die "run as root (it installs build dependencies with apt-get)"

mkdir -p "$CACHE"
# One build at a time; a second caller waits and then reuses the binary.
exec 9>"$CACHE/.lock"
flock 9
if [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi

APT_UPDATED=0
apt_update_once() {
    [ $APT_UPDATED -eq 1 ] && return 0
    say "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
}

# --- build dependencies ------------------------------------------------------------------
missing=()
for pkg in meson ninja-build g++ pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2
    fi
fi

# --- source package ------------------------------------------------------------------------
dsc=$(ls "$SRCPKGS"/fuse3_*.dsc 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$dsc" ]; then
    dsc=$(ls "$CACHE"/src/fuse3_*.dsc 2>/dev/null | sort -V | tail -n1 || true)
fi
if [ -z "$dsc" ]; then
    if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        [ -f /etc/apt/sources.list.d/debian.sources ] ||
            die "no deb-src entry and no /etc/apt/sources.list.d/debian.sources to copy"
        say "adding /etc/apt/sources.list.d/memfs-deb-src.sources"
        sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
            >/etc/apt/sources.list.d/memfs-deb-src.sources
        APT_UPDATED=0
    fi
    apt_update_once
    mkdir -p "$CACHE/src"
    say "apt-get source --download-only fuse3"
    (cd "$CACHE/src" && apt-get source -qq --download-only fuse3 >&2)
    dsc=$(ls "$CACHE"/src/fuse3_*.dsc 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$dsc" ] || die "apt-get source fuse3 gave no .dsc in $CACHE/src"
fi

# --- unpack (with Debian's patches), configure, build --------------------------------------
tree=$CACHE/fuse3
rm -rf "$tree"
say "unpacking $dsc"
# --no-check: the archive's signature needs a keyring this machine may lack; apt already
# checked the files' hashes when it fetched them.
dpkg-source --no-check -x "$dsc" "$tree" >&2
say "building passthrough_hp in $tree/build"
(
    cd "$tree"
    meson setup build -Dexamples=true -Dcpp_args=-DHAVE_UTIMENSAT \
        -Dutils=false -Dtests=false -Ddefault_library=static >"$CACHE/meson.log" 2>&1 ||
        { cat "$CACHE/meson.log" >&2; exit 1; }
    ninja -C build example/passthrough_hp >"$CACHE/ninja.log" 2>&1 ||
        { tail -n 40 "$CACHE/ninja.log" >&2; exit 1; }
)
cp "$tree/build/example/passthrough_hp" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
say "built $("$BIN" --help 2>&1 | head -n1 || true)"
echo "$BIN"
