#!/bin/bash
# prio.sh ROUNDS MODE...: memfs with its commit threads reniced (none|nN|idle|batch);
# phases: untar pg, 1 GiB dd conv=fsync, 100 MiB small writes; rotated order per round
M=${MNT:-/tmp/memfs-exp/mnt}; mkdir -p $M
# IN: big.bin (1 GiB random), small.bin (100 MiB random), pg.tar (postgresql-15's
# orig tarball, decompressed), on a tmpfs so that reading them costs every target the same
IN=${IN:-/tmp/memfs-exp/in}
B=${B:-target/release/memfs}
R=$1; shift; MODES=("$@")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for k in "${!MODES[@]}"; do mode=${MODES[$(( (k+r-1) % ${#MODES[@]} ))]}
 if [ $mode = tmpfs ]; then mount -t tmpfs tmpfs $M; else
 setsid -w $B mount $M 2>/dev/null & sleep 0.7; pid=$(pgrep -n -f "mount $M")
 for t in $(ls /proc/$pid/task); do n=$(cat /proc/$pid/task/$t/comm); case $n in memfs-commit*)
   case $mode in n[0-9]*) renice -n ${mode#n} -p $t >/dev/null;; idle) chrt -i -p 0 $t;; batch) chrt -b -p 0 $t;; esac;; esac; done
 fi
 mkdir $M/u; t0=$(date +%s%N); tar -xf $IN/pg.tar -C $M/u; t1=$(date +%s%N)
 dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; t2=$(date +%s%N)
 dd if=$IN/small.bin of=$M/small bs=4107 conv=fsync 2>/dev/null; t3=$(date +%s%N)
 c=0; [ $mode != tmpfs ] && c=$(awk '{print ($14+$15)*10}' /proc/$pid/stat)
 echo "$mode r$r untar=$(ms $t0 $t1) dd=$(ms $t1 $t2) small=$(ms $t2 $t3) cpu=$c"
 umount $M; wait
done; done
