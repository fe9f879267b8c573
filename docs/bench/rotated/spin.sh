#!/bin/bash
# spin.sh start|stop: a SCHED_IDLE busy loop pinned to each CPU (keeps idle vCPUs out of HLT)
case $1 in
start) for c in $(seq 0 $(( $(nproc) - 1 ))); do taskset -c $c chrt -i 0 sh -c 'while :; do :; done' & echo $! >> /tmp/spin.pids; done ;;
stop) kill $(cat /tmp/spin.pids) 2>/dev/null; rm -f /tmp/spin.pids ;;
esac
