#!/bin/bash
# ddopts.sh ROUNDS 'label|BIN|ARGS' ...: 1 GiB dd conv=fsync, fresh mount each; tmpfs each round
M=${MNT:-/tmp/memfs-exp/mnt}; mkdir -p $M
# IN: big.bin (1 GiB random), small.bin (100 MiB random), pg.tar (postgresql-15's
# orig tarball, decompressed), on a tmpfs so that reading them costs every target the same
IN=${IN:-/tmp/memfs-exp/in}
R=$1; shift
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for spec in 'tmpfs||' "$@"; do
 IFS='|' read -r label B args <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 setsid -w $B mount $args $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount .*$M"); fi
 t1=$(date +%s%N); dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; t2=$(date +%s%N)
 c1=0; [ $label != tmpfs ] && c1=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 t3=$(date +%s%N); [ $label != tmpfs ] && cat $M/.memfs/stats.json >/dev/null; t4=$(date +%s%N)
 c2=0; flt=0; [ $label != tmpfs ] && c2=$(awk "{print (\$14+\$15)*10}" /proc/$pid/stat) && flt=$(awk "{print \$10}" /proc/$pid/stat)
 echo "$label r$r dd=$(ms $t1 $t2) cpu_at_fsync=$c1 settle=$(ms $t3 $t4) cpu=$c2 minflt=$flt"
 umount $M; wait
done; done
