#!/bin/bash
# rig-timeout: 1500
# What a host's I/O feels when one iSCSI link is cut, with open-iscsi's
# DEFAULT timeouts (replacement_timeout 120 s, noop 5/5 s), seed 001's
# layout: each daemon must write fast_io_fail_tmo (5) into the sessions'
# recovery_tmo, or a direct-I/O reader on the map stalls ~2 minutes.
# mpathd and Debian's multipathd run in turn on the same SAN; each one's
# longest stall is measured by a reader through the map (2 cuts each), and
# mpathd's must be no worse than multipathd's (plus one noop interval, the
# phase of the initiator's noop timer against the cut) and far below 120 s.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"
READER="$MPATHD_BIN/examples/stall_reader"
TRIES=${FAILOVER_TRIES:-2}

iscsi_san 1 32 default
iscsi_pair
p0=$P0 p1=$P1 w=$W
session_of() { local p; p=$(cd -P "/sys/block/$1" && pwd); p=${p#*/session}; echo "session${p%%/*}"; }
s0=$(session_of "$p0"); s1=$(session_of "$p1")
recovery_tmo() { read_attr "/sys/class/iscsi_session/$1/recovery_tmo"; }
assert_eq 120 "$(recovery_tmo "$s0")" "open-iscsi's default replacement_timeout on $s0"
iscsi_set_alua a ao
iscsi_set_alua b an
for d in "$p0" "$p1"; do dd if="/dev/$d" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null || true; done

CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	failback immediate
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

# Both paths active in the kernel's status line.
active_paths() { map_active_paths "$w"; }

# measure NAME TRY: cut link 0 (the optimized path's) under a reader.
measure() {
    local name=$1 try=$2 out
    wait_for "[ \"\$(active_paths)\" = 2 ]" 180 || fail "$name: both paths not active before try $try"
    # A daemon that just started may have made the map anew: udev's node
    # comes after the table.
    udev_settle 60
    wait_for "[ -b /dev/mapper/$w ]" 60 || fail "$name: no /dev/mapper/$w"
    out=$CASE_OUT/reader-$name-$try.txt
    "$READER" "/dev/mapper/$w" 45 --mark "$CASE_OUT/errors-$name-$try.txt" >"$out" &
    local rpid=$!
    sleep 5
    iscsi_link_down 0
    wait "$rpid" || fail "$name: reader failed"
    iscsi_link_up 0
    cat "$out"
    read -r -a kv <"$out"
    local errors=${kv[1]#errors=} stall=${kv[2]#max_stall_ms=}
    assert_eq 0 "$errors" "$name try $try: failed reads with a path left"
    echo "$stall" >>"$CASE_OUT/stalls-$name.txt"
    log "$name try $try: longest stall ${stall} ms"
}

max_of() { sort -n "$1" | tail -n1; }

# ---- mpathd
printf '%s\n' "$CONF" >/etc/multipath.conf
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
MPID=$!
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 120
wait_for "[ \"\$(recovery_tmo $s0)\" = 5 ] && [ \"\$(recovery_tmo $s1)\" = 5 ]" 60 ||
    fail "mpathd did not write fast_io_fail_tmo 5 into recovery_tmo ($s0=$(recovery_tmo "$s0") $s1=$(recovery_tmo "$s1"))"
"$MP" show paths reasons | tee "$CASE_OUT/reasons.txt"
grep -q "$p0 .*wrote class/iscsi_session/$s0/recovery_tmo=5" "$CASE_OUT/reasons.txt" ||
    fail "show paths reasons does not say what was written for $p0"
for ((t = 1; t <= TRIES; t++)); do measure mpathd "$t"; done
kill "$MPID"; wait "$MPID" || true
dmsetup remove "$w" || fail "map not removable after mpathd stopped"

# ---- Debian's multipathd, from the same starting point
# (EBUSY while a session is still recovering from the last cut)
for s in "$s0" "$s1"; do
    wait_for "echo 120 2>/dev/null >/sys/class/iscsi_session/$s/recovery_tmo" 60
done
start_peer_multipathd "$CONF"
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 120
wait_for "[ \"\$(recovery_tmo $s0)\" = 5 ]" 60 || log "multipathd left recovery_tmo at $(recovery_tmo "$s0")"
for ((t = 1; t <= TRIES; t++)); do measure multipathd "$t"; done
stop_peer_multipathd

ours=$(max_of "$CASE_OUT/stalls-mpathd.txt")
theirs=$(max_of "$CASE_OUT/stalls-multipathd.txt")
echo "RESULT iscsi-default-timeouts longest-stall-ms mpathd=$ours multipathd=$theirs tries=$TRIES" |
    tee "$CASE_OUT/result.txt"
[ "$ours" -lt 60000 ] || fail "mpathd: I/O stalled ${ours} ms (open-iscsi's 120 s replacement_timeout was not cut)"
[ "$ours" -le $((theirs + 5000)) ] || fail "mpathd's longest stall ${ours} ms is worse than multipathd's ${theirs} ms"
echo "ok: longest I/O stall on a cut link, default open-iscsi timeouts: mpathd ${ours} ms, multipathd ${theirs} ms"
