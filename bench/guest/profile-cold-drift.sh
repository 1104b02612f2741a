#!/bin/bash
# rig-timeout: 3600
# Why one build's cold start grows slower turn after turn in one guest
# (bench/README.md, "turn position"): the same build, TURNS_N cold starts
# on one SAN, each followed by a flush as in the benchmark. Per turn it
# records the kernel's memory and caches, the udev database, a fixed sysfs
# read of every path (a clock that does not involve the daemon), and, in
# the first and last turn, a perf profile of the daemon. Runs in the rig's
# guest:
#   cargo build --release --bins --example bench_client
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-cold-drift bench/guest/profile-cold-drift.sh
# Output in tests/vm/out/profile-cold-drift/profile-cold-drift/.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the sizes here.
LUNS=256
TURNS_N=5
# shellcheck source=profile-lib.sh
. "$REPO/bench/guest/profile-lib.sh"

# What might accumulate between turns, one line each.
snapshot() { # LABEL
    local m
    m=$(awk '/^(MemFree|Cached|Slab|SReclaimable|SUnreclaim|Shmem|Percpu|KernelStack):/ { printf "%s=%dM ", $1, $2 / 1024 }' /proc/meminfo)
    log "SNAP $1 mem: $m"
    log "SNAP $1 dentry: $(cat /proc/sys/fs/dentry-state) inodes: $(cat /proc/sys/fs/inode-nr)"
    log "SNAP $1 udev db: $(find /run/udev -type f | wc -l) files $(du -sk /run/udev | cut -f1) KiB; dm devices: $(dmsetup ls | grep -vc 'No devices')"
    log "SNAP $1 procs: $(ps -e --no-headers | wc -l) kworkers: $(pgrep -c kworker) udev workers: $(pgrep -c systemd-udevd)"
    slabtop -o -s c 2>/dev/null | sed -n 8,14p | awk -v l="$1" '{ print "SLAB " l ": " $0 }'
}

# Reads three attributes of every path: sysfs lookups without the daemon.
sysfs_clock() {
    local t0 t1 d
    t0=$(date +%s%N)
    for d in /sys/block/sd*; do
        cat "$d/dev" "$d/device/vendor" "$d/device/state" >/dev/null
    done
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

for ((n = 1; n <= TURNS_N; n++)); do
    pre=$CASE_OUT/$n
    snapshot "turn$n-before"
    log "SYSFS turn $n: $(sysfs_clock) ms"
    cmd=("$BIN/mpathd" -d -v2)
    if [ "$n" = 1 ] || [ "$n" = "$TURNS_N" ]; then
        cmd=(perf record -q -g -F 499 -o "$pre.perf" -- "${cmd[@]}")
    fi
    vmstat -n 1 >"$pre.vmstat" &
    vm=$!
    line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
        --pidfile "$pre.pid" --log "$pre.log" -- "${cmd[@]}") ||
        fail "turn $n: cold start failed: $line"
    log "COLD turn $n: $line"
    grep -E "coldplug|initial paths" "$pre.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160
    t0=$SECONDS
    udev_settle 900
    kill "$vm"
    wait "$vm" 2>/dev/null
    log "COLD turn $n: udev settled $((SECONDS - t0)) s after all maps were complete"
    log "COLD turn $n vmstat (us sy id) first 12 s: $(awk 'NR > 2 && NR <= 14 { printf "%s/%s/%s ", $13, $14, $15 }' "$pre.vmstat")"
    pkill -TERM -x mpathd
    wait_for "! pgrep -x mpathd >/dev/null && ! pgrep -x perf >/dev/null" 120
    if [ -f "$pre.perf" ]; then
        perf report -q --stdio --no-children -g none -i "$pre.perf" --sort dso,sym \
            2>/dev/null | grep -v '^$' | head -n 120 >"$pre-by-sym.txt"
        head -n 25 "$pre-by-sym.txt"
    fi
    snapshot "turn$n-maps"
    t0=$SECONDS
    flush_mpath_maps
    udev_settle 900
    log "FLUSH turn $n: $((SECONDS - t0)) s"
done
exit 0
