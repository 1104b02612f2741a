#!/bin/bash
# rig-timeout: 3600
# Cold start of two mpathd builds on one SAN, in both orders (base, new,
# new, base), with what the guest did meanwhile: its CPU each second
# (vmstat) and the uevents udev finished each second, dm maps apart from
# paths. To see what a change to start-up is worth before a full benchmark
# run. Not the benchmark (no multipathd). Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   cp <the other build>/mpathd target/release/mpathd-base   # optional
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-cold-ab bench/guest/profile-cold-ab.sh
# Output in tests/vm/out/profile-cold-ab/profile-cold-ab/: per turn the
# daemon log, vmstat and udev lines, and the timing lines in the log.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the size here.
LUNS=256
# shellcheck source=profile-lib.sh
. "$REPO/bench/guest/profile-lib.sh"

# udev's finished events per second from `udevadm monitor --udev` lines
# ("UDEV  [12.345] change /devices/... (block)"): seconds since T0 (the
# monitor's clock is CLOCK_MONOTONIC, as /proc/uptime is near enough).
udev_per_second() { # FILE T0
    awk -v t0="$2" '/^UDEV/ {
        t = $2; gsub(/[][]/, "", t); s = int(t - t0)
        if ($4 ~ /virtual\/block\/dm-/) dm[s]++; else if ($5 == "(block)") sd[s]++
        if (s > last) last = s
    } END { for (i = 0; i <= last; i++) printf "%d dm=%d sd=%d\n", i, dm[i], sd[i] }' "$1"
}

n=0
for turn in $TURNS; do
    n=$((n + 1))
    bin=$(binary_of "$turn")
    pre=$CASE_OUT/$n-$turn
    vmstat -n 1 >"$pre.vmstat" &
    vm=$!
    udevadm monitor --udev --subsystem-match=block >"$pre.udev" &
    mon=$!
    sleep 1
    read -r up _ </proc/uptime
    line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
        --pidfile "$pre.pid" --log "$pre.log" -- "$bin" -d -v2) ||
        fail "$turn: cold start failed: $line"
    log "COLD turn $n $turn: $line"
    t0=$SECONDS
    udev_settle 900
    log "COLD turn $n $turn: udev settled $((SECONDS - t0)) s after all maps were complete"
    kill "$vm" "$mon"
    wait "$vm" "$mon" 2>/dev/null
    udev_per_second "$pre.udev" "$up" >"$pre.udev-per-s"
    grep -E "coldplug|initial paths" "$pre.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160
    log "first 20 s (vmstat us sy id wa, udev finished dm/sd):"
    paste -d' ' <(awk 'NR > 2 { print $13, $14, $15, $16 }' "$pre.vmstat" | head -n 20) \
        <(head -n 20 "$pre.udev-per-s")
    pkill -TERM -x "$(basename "$bin")"
    wait_for "! pgrep -x $(basename "$bin") >/dev/null" 60
    flush_mpath_maps
done
exit 0
