#!/bin/bash
# rig-timeout: 600
# Lost uevents are not lost paths. The daemon runs with a tiny uevent socket
# buffer (MPATHD_UEVENT_RCVBUF) and is stopped (SIGSTOP) while LUNs appear
# and disappear, so the kernel drops udev's messages to it. On SIGCONT it
# must see ENOBUFS, rescan sysfs, build the maps of the new LUNs and remove
# the map whose paths went away.
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
LUNS=2
MORE=6

nmaps() { dmsetup ls --target multipath 2>/dev/null | grep -c . || true; }

san_scsi_debug "$LUNS" 2
printf '%s\n' "$CONF" >/etc/multipath.conf
mkdir -p /etc/multipath
rm -f /etc/multipath/wwids

MPATHD_UEVENT_RCVBUF=4096 "$MPATHD_BIN/mpathd" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
pid=$!
wait_for "$MPATHD_BIN/mpathd show daemon" 60
wait_for "[ \$(nmaps) -ge $LUNS ]" 120
log "mpathd: $(nmaps) maps"

# --- LUNs appear while the daemon cannot read its socket
kill -STOP "$pid"
log "mpathd stopped; adding $MORE LUNs"
echo $((LUNS + MORE)) >/sys/bus/pseudo/drivers/scsi_debug/max_luns
for h in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*; do
    echo "- - -" >"/sys/class/scsi_host/${h##*/}/scan"
done
total=$(((LUNS + MORE) * 2))
wait_for "[ \$(san_paths | wc -l) -ge $total ]" 120
udev_settle 300
log "$(san_paths | wc -l) paths; resuming mpathd"
kill -CONT "$pid"
wait_for "grep -q 'uevent socket overflowed' '$CASE_OUT/mpathd.log'" 60 ||
    fail "no overflow seen: the test did not lose events (buffer too big?)"
grep -m1 'uevent socket overflowed' "$CASE_OUT/mpathd.log"
wait_for "[ \$(nmaps) -ge $((LUNS + MORE)) ]" 180
udev_settle 120
wait_for "[ \$($MPATHD_BIN/mpathd show paths raw format '%d %m' | awk '\$2 != \"[orphan]\"' | grep -c .) -ge $total ]" 120
"$MPATHD_BIN/mpathd" show topology >"$CASE_OUT/topology.txt"
for w in $(san_wwids); do
    n=$(dmsetup table "$w" 2>/dev/null | grep -oE '[0-9]+:[0-9]+' | wc -l)
    assert_eq 2 "$n" "paths in the table of $w"
done
log "ok: $((LUNS + MORE)) maps with 2 paths each after the resync"

# --- paths go away while the daemon cannot read its socket
victim_lun=$((LUNS + MORE - 1))
mapfile -t victims < <(lun_paths "$victim_lun")
victim_wwid=$(dev_wwid "${victims[0]}")
kill -STOP "$pid"
for d in "${victims[@]}"; do path_delete "$d"; done
# Events for other devices keep the tiny buffer overflowing.
for d in $(san_paths); do echo change >"/sys/block/$d/uevent"; done
udev_settle 300
kill -CONT "$pid"
wait_for "[ \$(grep -c 'uevent socket overflowed' '$CASE_OUT/mpathd.log') -ge 2 ]" 60 ||
    fail "no second overflow"
wait_for "! dmsetup info '$victim_wwid' >/dev/null 2>&1" 120 ||
    fail "map $victim_wwid of deleted paths ${victims[*]} still there"
for d in "${victims[@]}"; do
    if "$MPATHD_BIN/mpathd" show paths raw format '%d' | grep -qx "$d"; then
        fail "deleted path $d still listed"
    fi
done
log "ok: map of the deleted LUN removed, its paths gone from show paths"

kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
dmsetup remove_all --force >/dev/null 2>&1 || true
