#!/bin/bash
# rig-timeout: 900
# The path state machine on real devices (scsi_debug, 2 LUNs x 3 hosts:
# host_no mod 3 gives active/optimized, active/non-optimized and standby):
# a standby path is ghost; offline fails a path in dm while a reader keeps
# reading and running reinstates it within a checker tick; no_path_retry N
# queues for N intervals then fails I/O; `queue` holds I/O until a path
# returns.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

conf() {
    cat >/etc/multipath.conf <<CONF
defaults {
	find_multipaths greedy
	polling_interval 2
	max_polling_interval 4
	no_path_retry $1
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
}
MP="$MPATHD_BIN/mpathd"

san_scsi_debug 2 3
mapfile -t wwids < <(san_wwids)
conf 3
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "[ \$(dmsetup ls --target multipath | grep -c .) -ge 2 ]" 120
wait_for "! $MP show status | grep -q '^busy: True'" 60
"$MP" show topology | tee "$CASE_OUT/topology.txt"

# scsi_debug answers TUR on a standby port with GOOD (LIO answers NOT READY
# 04/0b: the ghost case is in 20-iscsi): the standby path is up with the
# lowest priority, alone in the last path group.
standby=
for d in $(san_paths); do
    if [ "$(path_access_state "$d")" = standby ]; then standby=$d; break; fi
done
[ -n "$standby" ] || fail "no standby path"
topo=$("$MP" show map "$(dev_wwid "$standby")" topology)
echo "$topo"
grep -B1 " $standby " <<<"$topo" | grep -q "prio=1 status=enabled" || fail "standby path not in a prio 1 group"
tail -n 1 <<<"$topo" | grep -q " $standby " || fail "standby path's group is not last"
echo "ok: standby path $standby in the last group, prio 1"

w=${wwids[0]}
mapfile -t lp < <(wwid_paths "$w")
good=()
for d in "${lp[@]}"; do [ "$(path_access_state "$d")" != standby ] && good+=("$d"); done
log "map $w paths ${lp[*]} (usable: ${good[*]})"

# Reader keeps going while one path is offlined and brought back.
( while :; do dd if="/dev/mapper/$w" of=/dev/null bs=64k count=32 iflag=direct 2>/dev/null || echo ERR >>"$CASE_OUT/reader.err"; done ) &
READER=$!
p=${good[0]}; mm=$(dev_majmin "$p")
path_offline "$p"
wait_for "dmsetup status $w | grep -q '$mm F'" 15
path_online "$p"
t0=$SECONDS
wait_for "dmsetup status $w | grep -q '$mm A'" 10
log "reinstated $p $((SECONDS - t0)) s after running (max_polling_interval 4)"
kill "$READER"; wait "$READER" 2>/dev/null || true
[ ! -s "$CASE_OUT/reader.err" ] || fail "reader saw I/O errors"
echo "ok: reader unaffected"

# no_path_retry 3: all paths down -> queue 3 x 2 s, then fail I/O. The
# kernel's table is the witness: queue_if_no_path while counting down,
# gone after; and the failure comes no earlier than 3 x 2 s after the paths
# went (the daemon cannot have started counting before that).
dmsetup table "$w" | grep -q queue_if_no_path || fail "no_path_retry 3: the table does not queue"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t_off=$(ms)
for d in "${lp[@]}"; do path_offline "$d"; done
if dd if="/dev/mapper/$w" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then fail "read succeeded with no path"; fi
el=$(( $(ms) - t_off ))
log "I/O failed ${el} ms after the paths went"
"$MP" show maps status
[ "$el" -ge 5900 ] || fail "I/O failed after ${el} ms, before no_path_retry 3 x polling_interval 2 s"
[ "$el" -le 40000 ] || fail "queued too long (${el} ms)"
if dmsetup table "$w" | grep -q queue_if_no_path; then fail "no_path_retry ran out but the table still queues"; fi
echo "ok: no_path_retry 3: queued ${el} ms (>= 6 s), then the table stopped queueing"
"$MP" show maps stats | tee -a /dev/stderr | grep "$w"
for d in "${lp[@]}"; do path_online "$d"; done
# Paths in the status line are `maj:min A|F count`; group states are bare.
active_paths() { dmsetup status "$w" | grep -Eo '[0-9]+:[0-9]+ A ' | wc -l; }
wait_for "[ \$(active_paths) -ge ${#good[@]} ]" 20

# no_path_retry queue: I/O waits and completes when a path returns.
kill -TERM "$PID"; wait "$PID" || true
conf queue
"$MP" -d -v3 >"$CASE_OUT/mpathd-queue.log" 2>&1 &
PID=$!
wait_for "dmsetup table $w | grep -q queue_if_no_path" 60
for d in "${lp[@]}"; do path_offline "$d"; done
wait_for "[ \$(active_paths) -eq 0 ]" 20
dd if="/dev/mapper/$w" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null &
DD=$!
sleep 6
kill -0 "$DD" || fail "I/O did not wait for a path"
echo "ok: I/O queued with no path"
for d in "${lp[@]}"; do path_online "$d"; done
wait "$DD" || fail "queued I/O failed after a path returned"
echo "ok: queued I/O completed when a path returned"
kill -TERM "$PID"; wait "$PID" || true
