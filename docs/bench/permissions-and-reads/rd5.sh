#!/bin/bash
# rd5.sh ROUNDS BIN: the cold read of rd4.sh (untar, 1 GiB dd, sync, drop_caches, timed read), reader unpinned; per ring thread its CPU, migrations and switches, the steal time, and the reader's migrations and switches (perf stat).
M=/tmp/untar-exp/mnt; S=/tmp/untar-exp/shm; R=$1; B=$2
st() { awk -v k="$2" '$1==k{print $3}' /proc/$P/task/$1/sched; }
for r in $(seq $R); do
 setsid $B mount $M 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename $B)")
 mkdir $M/untar; tar -xf $S/pg.tar -C $M/untar; dd if=$S/big.bin of=$M/big bs=1M conv=fsync status=none; sync; echo 3 > /proc/sys/vm/drop_caches
 declare -A m0 s0 c0; for t in $(ls /proc/$P/task); do [ "$(cat /proc/$P/task/$t/comm)" = memfs-ring ] || continue; m0[$t]=$(st $t se.nr_migrations); s0[$t]=$(st $t nr_switches); c0[$t]=$(awk '{print $14+$15}' /proc/$P/task/$t/stat); done
st0=$(awk "/^cpu /{print \$9}" /proc/stat); s=$(date +%s%N); perf stat -e cpu-migrations,context-switches -x, -o /tmp/dd.stat dd if=$M/big of=/dev/null bs=1M status=none; e=$(date +%s%N)
st1=$(awk "/^cpu /{print \$9}" /proc/stat); out=" steal=$((st1-st0))"; for t in "${!m0[@]}"; do out="$out ring[cpu=$(( ($(awk '{print $14+$15}' /proc/$P/task/$t/stat) - ${c0[$t]})*10 )) mig=$(( $(st $t se.nr_migrations) - ${m0[$t]} )) sw=$(( $(st $t nr_switches) - ${s0[$t]} ))]"; done
 echo "read=$(( (e-s)/1000000 ))$out dd:$(grep -v '^#' /tmp/dd.stat | awk -F, 'NF>2{printf " %s=%s", $3, $1}')"
 umount $M; sleep 0.5; unset m0 s0 c0
done
