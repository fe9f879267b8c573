#!/bin/bash
# mixroam.sh ROUNDS 'label|ENV|ARGS' ...: untar, 1 GiB dd, cold read (after settle), small writes, rm
M=${M:-/tmp/memfs-exp/mnt}; IN=${IN:-/tmp/memfs-exp/in}
B=${B:-target/release/memfs}
R=$1; shift; SPECS=("$@")
ms() { echo $(( ($2-$1)/1000000 )); }
for r in $(seq $R); do for k in "${!SPECS[@]}"; do spec=${SPECS[$(( (k+r-1) % ${#SPECS[@]} ))]}
 IFS='|' read -r label envs args <<<"$spec"
 if [ $label = tmpfs ]; then mount -t tmpfs tmpfs $M; else env $envs setsid -w $B mount $args $M 2>/dev/null & sleep 1; fi
 mkdir $M/u; t0=$(date +%s%N); tar -xf $IN/pg.tar -C $M/u; t1=$(date +%s%N)
 dd if=$IN/big.bin of=$M/big bs=1M conv=fsync 2>/dev/null; t2=$(date +%s%N)
 sync; echo 3 > /proc/sys/vm/drop_caches; t3=$(date +%s%N); dd if=$M/big of=/dev/null bs=1M 2>/dev/null; t4=$(date +%s%N)
 dd if=$IN/small.bin of=$M/small bs=4107 count=25532 conv=fsync 2>/dev/null; t5=$(date +%s%N)
 rm -rf $M/u $M/big $M/small; t6=$(date +%s%N)
 echo "$label r$r untar=$(ms $t0 $t1) dd=$(ms $t1 $t2) read=$(ms $t3 $t4) small=$(ms $t4 $t5) rm=$(ms $t5 $t6)"
 umount $M; wait
done; done
