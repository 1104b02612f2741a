#!/bin/bash
# rig-timeout: 3000
# Steady-state CPU of two mpathd builds side by side, in one guest on the
# same SAN, in both orders (base, new, new, base), then a profile of the
# new one: to see what a change to the checking path is worth before a
# full benchmark run. Not the benchmark (no multipathd, shorter windows).
# Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   cp <the other build>/mpathd target/release/mpathd-base   # optional
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-steady bench/guest/profile-steady.sh
# Output in tests/vm/out/profile-steady/profile-steady/: the daemons' logs,
# the CPU lines, and perf reports of the new build's steady state.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the sizes here.
LUNS=64
WINDOW=60
# shellcheck source=profile-lib.sh
. "$REPO/bench/guest/profile-lib.sh"

cpu_per_minute() { # PID SECS -> the PID's CPU over SECS, scaled to 60 s
    local hz=$(getconf CLK_TCK) t0=$(date +%s%N) c0=$(cpu_ticks "$1")
    sleep "$2"
    awk -v a="$c0" -v b="$(cpu_ticks "$1")" -v hz="$hz" -v w="$(($(date +%s%N) - t0))" \
        'BEGIN { printf "%.2f", (b - a) / hz * 60e9 / w }'
}

n=0
for turn in $TURNS; do
    n=$((n + 1))
    bin=$(binary_of "$turn")
    line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
        --pidfile "$CASE_OUT/$n-$turn.pid" --log "$CASE_OUT/$n-$turn.log" -- "$bin" -d -v2) ||
        fail "$turn: cold start failed: $line"
    pid=$(cat "$CASE_OUT/$n-$turn.pid")
    udev_settle 600
    # Let the checker intervals grow to max_polling_interval first.
    sleep 45
    log "STEADY turn $n $turn: $(cpu_per_minute "$pid" "$WINDOW") s CPU per 60 s"
    if [ "$turn" = new ] && [ ! -e "$CASE_OUT/steady.perf" ]; then
        perf record -q -F 499 -g -p "$pid" -o "$CASE_OUT/steady.perf" -- sleep 40 >/dev/null 2>&1
        perf report -q --stdio --no-children -g none -i "$CASE_OUT/steady.perf" \
            --sort dso,sym 2>/dev/null | grep -v '^$' | head -n 200 >"$CASE_OUT/by-sym.txt"
        perf report -q --stdio --children -g none -i "$CASE_OUT/steady.perf" --sort sym \
            2>/dev/null | grep -v '^$' | head -n 200 >"$CASE_OUT/children.txt"
        perf report -q --stdio --no-children -G -i "$CASE_OUT/steady.perf" --sort sym \
            2>/dev/null | grep -v '^$' | head -n 1500 >"$CASE_OUT/callers.txt"
    fi
    kill -TERM "$pid"
    wait_for "! kill -0 $pid 2>/dev/null" 60
    flush_mpath_maps
done
