#!/bin/bash
# coldread.sh ROUNDS SPEC...: SPEC = label|args ; 1 GiB written, caches dropped, read timed
M=${M:-/tmp/memfs-exp/mnt}; B=${B:-target/release/memfs}; R=$1; shift
for r in $(seq $R); do for spec in "$@"; do IFS='|' read -r label args <<<"$spec"
 setsid $B mount $args $M 2>/dev/null & sleep 1
 dd if=${IN:-/tmp/memfs-exp/in}/big.bin of=$M/big bs=1M conv=fsync status=none; sleep 1; sync; echo 3 >/proc/sys/vm/drop_caches
 s=$(date +%s%N); dd if=$M/big of=/dev/null bs=1M status=none; e=$(date +%s%N)
 echo "$label $(( (e-s)/1000000 ))"
 umount $M; sleep 0.5; rm -f /tmp/s9-t.trace
done; done | sort | awk '{a[$1]=a[$1]" "$2} END {for (k in a) print k, a[k]}'
