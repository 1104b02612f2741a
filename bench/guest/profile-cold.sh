#!/bin/bash
# rig-timeout: 2400
# Where mpathd's cold start spends its time, system-wide (the daemon, the
# kernel's SCSI/dm work, udev): not a benchmark (perf slows the guest), a
# profile to read beside one. Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   PROFILE_LUNS=64 RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-cold bench/guest/profile-cold.sh
# Output in tests/vm/out/profile-cold/profile-cold/: the daemon log,
# perf reports by command and by symbol, and the timing line.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
LUNS=${PROFILE_LUNS:-64}
BIN=$REPO/target/release
BC=$BIN/examples/bench_client
[ -x "$BIN/mpathd" ] && [ -x "$BC" ] || fail "release build missing (cargo build --release --bins --example bench_client)"

t0=$SECONDS
SAN_WAIT_SECS=1200 san_scsi_debug_active "$LUNS" 4 || fail "SAN set-up failed"
udev_settle 900
log "SAN: $(san_paths | wc -l) paths in $((SECONDS - t0)) s"
mkdir -p /etc/multipath
cat >/etc/multipath.conf <<'EOF'
defaults {
	find_multipaths yes
	user_friendly_names no
	polling_interval 5
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
EOF

log "udev listing costs: $("$BC" udev-cost)"

perf record -q -a -g -F 199 -o "$CASE_OUT/cold.perf" -- sleep 600 >/dev/null 2>&1 &
perf_pid=$!
sleep 2
line=$("$BC" --timeout 900 start-wait --maps "$LUNS" --paths 4 \
    --pidfile "$CASE_OUT/mpathd.pid" --log "$CASE_OUT/mpathd.log" -- "$BIN/mpathd" -d -v2)
log "cold start: $line"
kill -INT "$perf_pid"
wait "$perf_pid"
kill -TERM "$(cat "$CASE_OUT/mpathd.pid")"
perf report -q --stdio --no-children -i "$CASE_OUT/cold.perf" --sort comm \
    2>/dev/null | grep -v '^$' | head -n 40 >"$CASE_OUT/by-comm.txt"
perf report -q --stdio --no-children -g none -i "$CASE_OUT/cold.perf" --sort comm,dso,sym \
    2>/dev/null | grep -v '^$' | head -n 200 >"$CASE_OUT/by-sym.txt"
perf report -q --stdio --children -g none -i "$CASE_OUT/cold.perf" --comm mpathd,tokio-runtime-w \
    --sort sym 2>/dev/null | grep -v '^$' | head -n 150 >"$CASE_OUT/mpathd-children.txt"
grep -E "coldplug|ready" "$CASE_OUT/mpathd.log" | head
head -n 30 "$CASE_OUT/by-comm.txt"
head -n 60 "$CASE_OUT/by-sym.txt"
exit 0
