#!/bin/bash
# untar.sh ROUNDS 'label|BIN|ENV|ARGS'...: untar and rm -rf of postgresql-15 on a fresh mount
# per run, targets interleaved; prints wall ms of each and memfs's CPU (user + system, ms).
# M: the mount point (empty directory); TAR: the uncompressed tarball.
M=${M:-/tmp/untar-exp/mnt}; TAR=${TAR:-/tmp/untar-exp/shm/pg.tar}; R=$1; shift
for r in $(seq "$R"); do for spec in "$@"; do IFS='|' read -r label B envs args <<<"$spec"
 setsid env $envs "$B" mount $args "$M" 2>/dev/null & sleep 1; P=$(pgrep -n -x "$(basename "$B")")
 mkdir "$M/u"; s=$(date +%s%N); tar -xf "$TAR" -C "$M/u"; e=$(date +%s%N); rm -rf "$M/u"; e2=$(date +%s%N)
 echo "$label untar=$(( (e-s)/1000000 )) rm=$(( (e2-e)/1000000 )) cpu=$(awk '{print ($14+$15)*10}' /proc/$P/stat)"
 umount "$M"; sleep 0.5
done; done | sort
