#!/bin/bash
# mix.sh ROUNDS 'label|BIN|ARGS|WHICH-THREADS-IDLE(regex of comm)' ...: untar, 1 GiB dd, small writes; fresh mount each
M=${M:-/tmp/memfs-exp/mnt}; IN=${IN:-/tmp/memfs-exp/in}; mkdir -p $M
R=$1; shift; SPECS=("$@")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label B args re <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 setsid -w $B mount $args $M 2>/dev/null & sleep 1; pid=$(pgrep -n -f "mount .*$M")
 if [ -n "$re" ]; then for t in /proc/$pid/task/*; do grep -qE "$re" $t/comm && chrt -i -p 0 $(basename $t); done; fi
 fi
 mkdir $M/u; t0=$(date +%s%N); tar -xf $IN/pg.tar -C $M/u; t1=$(date +%s%N)
 dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; t2=$(date +%s%N)
 dd if=$IN/small.bin of=$M/small bs=4107 count=25532 conv=fsync 2>/dev/null; t3=$(date +%s%N)
 echo "$label r$r untar=$(ms $t0 $t1) dd=$(ms $t1 $t2) small=$(ms $t2 $t3)"
 umount $M; wait
done; done
