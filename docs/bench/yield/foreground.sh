#!/bin/bash
# foreground.sh ROUNDS: memfs started as a job of another session (bash -c in a setsid, as
# a foreground memfs in one terminal used from another): untar + rm of pg.tar and the
# getxattr loop, on BEFORE --io-uring, AFTER --io-uring and AFTER on /dev/fuse, rotated.
M=${M:-/tmp/memfs-exp/mnt}; IN=${IN:-/tmp/memfs-exp/in}; X=$(dirname "$0")/xattr.py
SPECS=("before|${BEFORE:?the binary before the change}|--io-uring" "after|${AFTER:-target/release/memfs}|--io-uring" "dev-fuse|${AFTER:-target/release/memfs}|")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $1); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label bin args <<<"$spec"
 setsid bash -c "$bin mount $args $M 2>/dev/null; true" & sleep 1
 mkdir $M/u; t0=$(date +%s%N); tar -xf $IN/pg.tar -C $M/u; t1=$(date +%s%N); rm -rf $M/u; t2=$(date +%s%N)
 x=$(python3 $X $M)
 echo "$label r$r untar=$(ms $t0 $t1) rm=$(ms $t1 $t2) $x"
 umount $M; sleep 0.5
done; done
