#!/bin/bash
# ring-policy.sh ROUNDS 'label|ARGS|RINGPOLICY' ...: untar + rm of pg.tar on a fresh memfs per run,
# rotated order; RINGPOLICY (e.g. "-i 0") is applied to memfs-ring threads with chrt.
M=${M:-/tmp/memfs-exp/mnt}; mkdir -p $M
B=${B:-target/release/memfs}
R=$1; shift; SPECS=("$@")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label args pol <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 setsid -w $B mount $args $M 2>/dev/null & sleep 1; pid=$(pgrep -n -f "mount .*$M")
 if [ -n "$pol" ]; then for t in /proc/$pid/task/*; do [ "$(cat $t/comm)" = memfs-ring ] && chrt $pol -p 0 $(basename $t); done; fi
 fi
 mkdir $M/u; t0=$(date +%s%N); tar -xf ${IN:-/tmp/memfs-exp/in}/pg.tar -C $M/u; t1=$(date +%s%N)
 t2=$(date +%s%N); rm -rf $M/u; t3=$(date +%s%N)
 c=0; [ $label != tmpfs ] && c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 echo "$label r$r untar=$(ms $t0 $t1) rm=$(ms $t2 $t3) cpu=$c"
 umount $M; wait
done; done
