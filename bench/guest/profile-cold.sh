#!/bin/bash
# rig-timeout: 2400
# Where mpathd's cold start spends its time (its threads in user space
# and in the kernel): not a benchmark (perf slows the guest), a
# profile to read beside one. Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-cold bench/guest/profile-cold.sh
# Output in tests/vm/out/profile-cold/profile-cold/: the daemon log,
# perf reports by symbol (self and with children), and the timing line.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the size here.
LUNS=256
# shellcheck source=profile-lib.sh
. "$REPO/bench/guest/profile-lib.sh"

log "udev listing costs: $("$BC" udev-cost)"

# The daemon runs under perf (user and kernel stacks of its threads: the
# ioctls and SG_IO it waits in). System-wide `perf record -a` captured
# almost nothing in this guest.
line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
    --pidfile "$CASE_OUT/perf.pid" --log "$CASE_OUT/mpathd.log" -- \
    perf record -q -g -F 499 -o "$CASE_OUT/cold.perf" -- "$BIN/mpathd" -d -v2)
log "cold start: $line"
pkill -TERM -x mpathd
wait_for "! pgrep -x perf >/dev/null" 120
perf report -q --stdio --no-children -g none -i "$CASE_OUT/cold.perf" --sort comm,dso,sym \
    2>/dev/null | grep -v '^$' | head -n 200 >"$CASE_OUT/by-sym.txt"
perf report -q --stdio --children -g none -i "$CASE_OUT/cold.perf" --sort sym \
    2>/dev/null | grep -v '^$' | head -n 150 >"$CASE_OUT/children.txt"
grep -E "coldplug|initial paths" "$CASE_OUT/mpathd.log" | head
head -n 40 "$CASE_OUT/by-sym.txt"
head -n 60 "$CASE_OUT/children.txt"
exit 0
