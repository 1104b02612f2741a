#!/bin/bash
# rig-timeout: 900
# mpathd against Debian's multipathd on the same scsi_debug SAN (4 LUNs x 2
# hosts, ALUA state differing per host): same tables, I/O works, checker
# fail/reinstate, kernel-failed path seen through dm events, the control
# socket answers Debian's own client, SIGTERM leaves maps, restart adopts.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

CONF='defaults {
	find_multipaths yes
	user_friendly_names no
	polling_interval 2
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

san_scsi_debug 4 2
mapfile -t wwids < <(san_wwids)
assert_eq 4 "${#wwids[@]}" "LUNs"

tables() { dmsetup table --target multipath | sort; }

# --- the peer first: what multipath-tools builds
start_peer_multipathd "$CONF"
wait_for "[ \$(dmsetup ls --target multipath | grep -c .) -ge 4 ]" 90
udev_settle 60
peer_tables=$(tables)
echo "peer tables:"; echo "$peer_tables"
multipathd show topology | tee "$CASE_OUT/peer-topology.txt"
multipathd show devices >"$CASE_OUT/peer-devices.txt"
multipathd show config local >"$CASE_OUT/peer-config-local.txt"
stop_peer_multipathd
wait_for "[ \$(mpath_map_count) -eq 0 ]" 30 || dmsetup remove_all --force
rm -f /etc/multipath/wwids

# --- mpathd
start_mpathd() {
    printf '%s\n' "$CONF" >/etc/multipath.conf
    "$MPATHD_BIN/mpathd" -d -v3 >>"$CASE_OUT/mpathd.log" 2>&1 &
    MPATHD_PID=$!
    wait_for "$MPATHD_BIN/mpathd show daemon" 30
}
t0=$SECONDS
start_mpathd
wait_for "[ \$(dmsetup ls --target multipath | grep -c .) -ge 4 ]" 90
log "mpathd built 4 maps in $((SECONDS - t0)) s"
udev_settle 60
ours=$(tables)
echo "mpathd tables:"; echo "$ours"
assert_eq "$peer_tables" "$ours" "dm tables equal to multipathd's"

for w in "${wwids[@]}"; do
    [ -b "/dev/mapper/$w" ] || fail "/dev/mapper/$w missing"
    dd if="/dev/mapper/$w" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null || fail "read through $w"
done
echo "ok: reads through every map"

"$MPATHD_BIN/mpathd" show maps | tee "$CASE_OUT/show-maps.txt"
assert_eq 5 "$(grep -c . "$CASE_OUT/show-maps.txt")" "show maps lines"
"$MPATHD_BIN/mpathd" show topology | tee "$CASE_OUT/topology.txt"
"$MPATHD_BIN/mpathd" show paths | tee "$CASE_OUT/paths.txt"
"$MPATHD_BIN/mpathd" show paths reasons | tee "$CASE_OUT/reasons.txt"
assert_eq 8 "$(grep -c 'multipathed in map' "$CASE_OUT/reasons.txt")" "every path says why it is multipathed"
grep -q "hwhandler='1 alua'" "$CASE_OUT/topology.txt" || fail "topology lacks hwhandler"
# Debian's own client against our socket.
multipathd show maps | tee "$CASE_OUT/debian-client-maps.txt"
assert_eq "$(cat "$CASE_OUT/show-maps.txt")" "$(cat "$CASE_OUT/debian-client-maps.txt")" "Debian client reads our socket"
multipathd show status
multipathd reconfigure | tee -a /dev/stderr | grep -q ok

# show devices: the same block devices and states as multipathd (its
# order is readdir's, so compared sorted); show config local: the same
# hardware entries for the present devices.
"$MPATHD_BIN/mpathd" show devices >"$CASE_OUT/devices.txt"
assert_eq "$(sort "$CASE_OUT/peer-devices.txt")" "$(sort "$CASE_OUT/devices.txt")" "show devices"
devices_section() { sed -n '/^devices {/,/^}/p' "$1"; }
"$MPATHD_BIN/mpathd" show config local >"$CASE_OUT/config-local.txt"
assert_eq "$(devices_section "$CASE_OUT/peer-config-local.txt")" "$(devices_section "$CASE_OUT/config-local.txt")" "show config local: devices section"
# reconfigure with nothing changed reloads nothing; reconfigure all
# reloads every map.
n0=$(grep -c "reloading map" "$CASE_OUT/mpathd.log" || true)
"$MPATHD_BIN/mpathd" reconfigure | grep -q ok || fail "reconfigure"
sleep 2
assert_eq "$n0" "$(grep -c "reloading map" "$CASE_OUT/mpathd.log" || true)" "reloads after a plain reconfigure"
"$MPATHD_BIN/mpathd" reconfigure all | grep -q ok || fail "reconfigure all"
wait_for "[ \$(grep -c 'reloading map' $CASE_OUT/mpathd.log) -ge $((n0 + 4)) ]" 30 || fail "reconfigure all did not reload the 4 maps"
echo "ok: show devices, show config local and reconfigure all"

# show metrics: Prometheus' own parser reads it; the numbers are the maps'.
"$MPATHD_BIN/mpathutil" metrics >"$CASE_OUT/metrics.prom"
/usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families as parse
v = {}
for f in parse(open(sys.argv[1]).read()):
    for s in f.samples:
        v[(s.name, tuple(sorted(s.labels.items())))] = s.value
print(int(v[("mpathd_maps", ())]), int(sum(x for (n, l), x in v.items() if n == "mpathd_map_redundant")),
      int(v[("mpathd_checker_duration_seconds_count", ())]) > 0)
' "$CASE_OUT/metrics.prom" >"$CASE_OUT/metrics.parsed" || fail "Prometheus' parser rejected show metrics"
assert_eq "4 4 True" "$(cat "$CASE_OUT/metrics.parsed")" "maps, redundant maps and timed checks in show metrics"

# --- checker: offline path fails in dm, running reinstates it
w=${wwids[0]}
mapfile -t lp < <(wwid_paths "$w")
p=${lp[0]}
mm=$(dev_majmin "$p")
log "offlining $p ($mm) of $w"
path_offline "$p"
wait_for "dmsetup status $w | grep -q '$mm F'" 15
"$MPATHD_BIN/mpathd" show paths | grep "$p" | tee -a /dev/stderr | grep -q faulty
dd if="/dev/mapper/$w" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null || fail "read with one path down"
path_online "$p"
wait_for "dmsetup status $w | grep -q '$mm A'" 10
log "reinstated"

# --- a path the kernel fails on I/O is seen through dm events at once.
# With checks a minute apart only a dm event can explain seeing it within
# seconds; the same run with dm events off must miss it (the check can
# fail), and with them on every failed path must show.
CONF_SLOW=$(printf '%s\n' "$CONF" | sed 's/polling_interval 2/polling_interval 60\n\tmax_polling_interval 60/')
restart_slow() {
    kill -TERM "$MPATHD_PID"; wait "$MPATHD_PID" || true
    printf '%s\n' "$CONF_SLOW" >/etc/multipath.conf
    env "$@" "$MPATHD_BIN/mpathd" -d -v3 >>"$CASE_OUT/mpathd.log" 2>&1 &
    MPATHD_PID=$!
    wait_for "$MPATHD_BIN/mpathd show daemon" 30
    wait_for "! $MPATHD_BIN/mpathd show status | grep -q '^busy: True'" 60
    # Every path checked once: a first check that comes after the fault
    # below would see it without any dm event.
    wait_for "! $MPATHD_BIN/mpathd show paths raw format '%T' | grep -qvw ready" 60 ||
        fail "paths not all checked ready after the restart"
    sleep 1
}
w=${wwids[1]}
mapfile -t lp < <(wwid_paths "$w")
mmA=$(dev_majmin "${lp[0]}"); mmB=$(dev_majmin "${lp[1]}")
# kernel_fails_both: I/O on the map with both paths offline makes dm fail
# them (the checker, a minute away, has not looked).
kernel_fails_both() {
    path_offline "${lp[0]}"; path_offline "${lp[1]}"
    dd if="/dev/mapper/$w" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null &
    ddpid=$!
    wait_for "dmsetup status $w | grep -q '$mmA F' && dmsetup status $w | grep -q '$mmB F'" 20
}
restore_both() {
    path_online "${lp[0]}"; path_online "${lp[1]}"
    "$MPATHD_BIN/mpathd" reinstate path "${lp[0]}" >/dev/null || true
    "$MPATHD_BIN/mpathd" reinstate path "${lp[1]}" >/dev/null || true
    wait_for "dmsetup status $w | grep -q '$mmA A' && dmsetup status $w | grep -q '$mmB A'" 30
    wait "$ddpid" || true
}
shows_failed() { "$MPATHD_BIN/mpathd" show paths | grep "$1 " | grep -q failed; }

restart_slow MPATHD_DM_EVENTS=off
kernel_fails_both
sleep 5
if shows_failed "${lp[0]}" || shows_failed "${lp[1]}"; then
    fail "without dm events a failed path showed within 5 s: something other than dm events detects it, so the check below proves nothing"
fi
echo "ok: negative control: with dm events off, mpathd does not see the kernel's failure within 5 s"
restore_both

restart_slow
kernel_fails_both
wait_for "shows_failed ${lp[0]} && shows_failed ${lp[1]}" 3 ||
    fail "mpathd did not show both kernel-failed paths within 3 s (dm events)"
echo "ok: both kernel-failed paths seen through dm events within 3 s (checks are 60 s apart)"
restore_both
printf '%s\n' "$CONF" >/etc/multipath.conf

# --- SIGTERM leaves maps, restart adopts them without reloading
before=$(tables)
kill -TERM "$MPATHD_PID"; wait "$MPATHD_PID" || true
assert_eq 4 "$(dmsetup ls --target multipath | grep -c .)" "maps after SIGTERM"
: >"$CASE_OUT/mpathd-restart.log"
printf '%s\n' "$CONF" >/etc/multipath.conf
"$MPATHD_BIN/mpathd" -d -v3 >"$CASE_OUT/mpathd-restart.log" 2>&1 &
MPATHD_PID=$!
wait_for "$MPATHD_BIN/mpathd show maps | grep -c mpath- >/dev/null; [ \$($MPATHD_BIN/mpathd show maps | grep -c .) -ge 5 ]" 60
sleep 3
assert_eq "$before" "$(tables)" "tables after restart"
if grep -E "creating map|reloading map" "$CASE_OUT/mpathd-restart.log"; then fail "restart reloaded maps"; fi
echo "ok: adopted without reload"

# Debian's multipath -ll reads our maps through libdevmapper.
multipath -ll | tee "$CASE_OUT/multipath-ll.txt"
for w in "${wwids[@]}"; do grep -q "^$w dm-" "$CASE_OUT/multipath-ll.txt" || fail "multipath -ll lacks $w"; done
assert_eq 8 "$(grep -cE '[0-9]+:[0-9]+:[0-9]+:[0-9]+ sd' "$CASE_OUT/multipath-ll.txt")" "paths in multipath -ll"

# Removing every path of an unused map removes the map.
w=${wwids[3]}
mapfile -t lp < <(wwid_paths "$w")
for d in "${lp[@]}"; do path_delete "$d"; done
wait_for "! dmsetup info $w >/dev/null 2>&1" 30
"$MPATHD_BIN/mpathd" show maps
echo "ok: map $w removed with its last path"
kill -TERM "$MPATHD_PID"; wait "$MPATHD_PID" || true
