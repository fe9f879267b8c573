#!/usr/bin/env bash
# The workload benchmark: clone, build, walk and remove real projects on memfs, traced memfs,
# tmpfs and disk (see README "Workloads"). Builds memfs first; all options go to bench.py:
#   scripts/bench.sh redis nginx --rounds 3
#   scripts/bench.sh --help
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ " $* " != *" --memfs "* && " $* " != *" --memfs="* && " $* " != *" --help "* ]]; then
    (cd "$here" && cargo build --release --quiet)
fi
exec python3 "$here/scripts/bench.py" "$@"
