#!/bin/bash
# rig-timeout: 2400
# Where mpathd spends its CPU during a hot add (64 LUNs x 4 paths while
# running): not a benchmark (perf slows the guest), a profile to read beside
# one. Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-hot bench/guest/profile-hot.sh
# Output in tests/vm/out/profile-hot/profile-hot/: the daemon log, perf
# reports by symbol (self and with children), and the timing line.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the sizes here.
LUNS=64
HOT=64
# shellcheck source=profile-lib.sh
. "$REPO/bench/guest/profile-lib.sh"

line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
    --pidfile "$CASE_OUT/mpathd.pid" --log "$CASE_OUT/mpathd.log" -- "$BIN/mpathd" -d -v2)
log "cold start: $line"
pid=$(cat "$CASE_OUT/mpathd.pid")
sleep 10
udev_settle 600

# The daemon's threads, user and kernel stacks, for the whole hot add.
perf record -q -g -F 499 -p "$pid" -o "$CASE_OUT/hot.perf" &
perf_pid=$!
line=$("$BC" --timeout 1800 run-wait --maps $((LUNS + HOT)) --paths 4 \
    -- bash -c "$(san_hot_add_script "$HOT")")
log "hot add: $line"
kill -INT "$perf_pid"
wait "$perf_pid"
log "daemon CPU: $(awk '{ print ($14 + $15) / 100 " s" }' "/proc/$pid/stat")"
kill -TERM "$pid"
perf report -q --stdio --no-children -g none -i "$CASE_OUT/hot.perf" --sort comm,dso,sym \
    2>/dev/null | grep -v '^$' | head -n 200 >"$CASE_OUT/by-sym.txt"
perf report -q --stdio --children -g none -i "$CASE_OUT/hot.perf" --sort sym \
    2>/dev/null | grep -v '^$' | head -n 150 >"$CASE_OUT/children.txt"
head -n 40 "$CASE_OUT/by-sym.txt"
head -n 60 "$CASE_OUT/children.txt"
exit 0
