#!/bin/bash
# rig-timeout: 2400
# Faults a storage host's data must survive, each under checksummed
# O_DIRECT writes (examples/integrity_io) read back against the journal
# afterwards, for mpathd and Debian's multipathd in turn on the same LUN:
#   npr       no_path_retry 3 (polling_interval 1) while paths flap: every
#             all-paths-down spell longer than 3 s fails writes, none before
#             3 s from its start; shorter spells fail none; nothing
#             acknowledged is lost.
#   reconf    reconfigure (SIGHUP / `multipathd reconfigure`) with a changed
#             selector, path_grouping_policy and failback, while writing:
#             no write fails.
#   iscsi-*   seed 001's two-portal iSCSI SAN, with short initiator
#             timeouts and with open-iscsi's defaults: one link cut, then
#             both (queued), then restored, while writing: no write fails.
# Each prints a RESULT line; the checks apply to mpathd (multipathd's line
# is printed beside it for the README's Reliability table).
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"
INTEG="$MPATHD_BIN/examples/integrity_io"
SPELLS=${FAULT_SPELLS:-6}
BLOCKS=2048
NPR=3

now_ms() { date +%s%3N; }
active() { map_active_paths "$W"; }
state() { for d in "$@"; do echo "$STATE" >"/sys/block/$d/device/state"; done; }
down() { STATE=offline state "$@"; }
up() { STATE=running state "$@"; }

# start NAME DAEMON CONF: DAEMON (mpathd|multipathd) on CONF, map $W ready.
start() {
    local name=$1 daemon=$2 conf=$3
    if [ "$daemon" = mpathd ]; then
        printf '%s\n' "$conf" >/etc/multipath.conf
        mkdir -p /etc/multipath
        "$MP" -d -v3 >"$CASE_OUT/mpathd-$name.log" 2>&1 &
        DPID=$!
    else
        start_peer_multipathd "$conf"
        DPID=$PEER_MULTIPATHD_PID
    fi
    wait_for "dmsetup table $W 2>/dev/null | grep -q multipath" 90 || fail "$name/$daemon: no map"
    wait_for "[ -b /dev/mapper/$W ] && [ \$(active) = 2 ]" 120 || fail "$name/$daemon: map without 2 active paths"
}

stop() {
    if [ "$1" = mpathd ]; then
        kill "$DPID"; wait "$DPID" || true
        dmsetup remove "$W" 2>/dev/null || true
    else
        stop_peer_multipathd
    fi
    udev_settle 60
}

reconfigure() {
    if [ "$1" = mpathd ]; then kill -HUP "$DPID"; else multipathd reconfigure >/dev/null; fi
}

# writer_start NAME / writer_stop NAME: the checksummed writer on the map.
writer_start() {
    rm -f "$CASE_OUT/stop-$1" "$CASE_OUT/errlog-$1"
    INTEGRITY_ERRLOG="$CASE_OUT/errlog-$1" "$INTEG" write "/dev/mapper/$W" 3600 "$BLOCKS" \
        "$CASE_OUT/journal-$1" "$CASE_OUT/stop-$1" >"$CASE_OUT/write-$1.txt" 2>&1 &
    WRITER=$!
    sleep 2
}
writer_stop() { # NAME EXTRA -> RESULT line; sets ERRORS, LOSS
    local name=$1 out
    touch "$CASE_OUT/stop-$name"
    wait "$WRITER" || fail "$name: the writer failed: $(cat "$CASE_OUT/write-$name.txt")"
    out=$("$INTEG" verify "/dev/mapper/$W" "$BLOCKS" "$CASE_OUT/journal-$name" 2>"$CASE_OUT/verify-$name.err") || true
    echo "RESULT faults $name $2 $(cat "$CASE_OUT/write-$name.txt") $out" | tee -a "$CASE_OUT/results.txt"
    ERRORS=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$CASE_OUT/write-$name.txt")
    LOSS=1
    case " $out " in *" mismatched=0 unreadable=0 "*) LOSS=0 ;; esac
}

# errors_between NAME FROM_MS TO_MS -> failed writes returned in the window
errors_between() { awk -v a="$2" -v b="$3" '$1 >= a && $1 < b { n++ } END { print n + 0 }' "$CASE_OUT/errlog-$1"; }
# first_error_after NAME FROM_MS -> ms from FROM_MS to the first failed write at or after it, or -1
first_error_after() { awk -v a="$2" '$1 >= a { print $1 - a; found = 1; exit } END { if (!found) print -1 }' "$CASE_OUT/errlog-$1"; }

# ------------------------------------------------------------ no_path_retry N
SAN_DEV_MB=16 san_scsi_debug_active 1 2
mapfile -t P < <(lun_paths 0)
assert_eq 2 "${#P[@]}" "paths of the LUN"
W=$(dev_wwid "${P[0]}")
NPR_CONF="defaults {
	find_multipaths greedy
	user_friendly_names no
	polling_interval 1
	no_path_retry $NPR
}
blacklist {
	devnode \"^(sr|vd|loop|ram)\"
}"

npr_run() { # DAEMON
    local d=$1 name=npr-$1 i t0 t1 spell long early=0 missing=0 short_err=0
    start "$name" "$d" "$NPR_CONF"
    dmsetup table "$W" | grep -q queue_if_no_path || fail "$name: the table does not queue (no_path_retry $NPR)"
    writer_start "$name"
    : >"$CASE_OUT/spells-$name"
    for ((i = 1; i <= SPELLS; i++)); do
        down "${P[$((RANDOM % 2))]}"; sleep 0.7; up "${P[0]}" "${P[1]}"
        wait_for "[ \$(active) = 2 ]" 60 >/dev/null || fail "$name: paths not back after a flap"
        sleep 0.5
        # Alternate long (6 s > 3 x 1 s) and short (1.5 s) all-paths-down spells.
        if ((i % 2)); then spell=6; long=1; else spell=1.5; long=0; fi
        t0=$(now_ms); down "${P[0]}" "${P[1]}"; sleep "$spell"; t1=$(now_ms); up "${P[0]}" "${P[1]}"
        echo "$t0 $t1 $long" >>"$CASE_OUT/spells-$name"
        wait_for "[ \$(active) = 2 ]" 60 >/dev/null || fail "$name: paths not back after spell $i"
        wait_for "dmsetup table $W | grep -q queue_if_no_path" 30 >/dev/null || fail "$name: queueing not restored after spell $i"
        sleep 1
    done
    writer_stop "$name" "spells=$SPELLS no_path_retry=$NPR"
    stop "$d"
    # Per spell: the first failed write's delay from the spell's start.
    while read -r t0 t1 long; do
        local first n
        first=$(first_error_after "$name" "$t0")
        n=$(errors_between "$name" "$t0" "$((t1 + 1000))")
        echo "  spell $t0..$t1 long=$long: $n failed writes, first after ${first} ms" | tee -a "$CASE_OUT/results.txt"
        if [ "$long" = 1 ]; then
            [ "$n" -gt 0 ] || missing=$((missing + 1))
            [ "$first" -ge $((NPR * 1000)) ] || early=$((early + 1))
        else
            [ "$n" = 0 ] || short_err=$((short_err + 1))
        fi
    done <"$CASE_OUT/spells-$name"
    echo "RESULT faults $name-timing early=$early never_failed=$missing short_spell_errors=$short_err loss=$LOSS" | tee -a "$CASE_OUT/results.txt"
    NPR_BAD=$((early + missing + short_err + LOSS))
}
npr_run mpathd
[ "$NPR_BAD" = 0 ] || fail "mpathd: no_path_retry $NPR: $(tail -1 "$CASE_OUT/results.txt")"
echo "ok: no_path_retry $NPR under flaps: long spells fail writes no earlier than ${NPR} s, short ones fail none, nothing lost"
npr_run multipathd

# ------------------------------------------------------------ reconfigure under I/O
RECONF_BASE='defaults {
	find_multipaths greedy
	user_friendly_names no
	polling_interval 1
	no_path_retry queue
	path_selector "service-time 0"
	path_grouping_policy group_by_prio
	failback immediate
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'
reconf_run() { # DAEMON
    local d=$1 name=reconf-$1 step conf tables=0 before
    start "$name" "$d" "$RECONF_BASE"
    writer_start "$name"
    for step in "round-robin 0|multibus|manual" "queue-length 0|failover|immediate" "service-time 0|group_by_prio|5" "round-robin 0|group_by_serial|manual"; do
        IFS='|' read -r sel pg fb <<<"$step"
        conf=$(printf '%s\n' "$RECONF_BASE" | sed -e "s/path_selector .*/path_selector \"$sel\"/" \
            -e "s/path_grouping_policy .*/path_grouping_policy $pg/" -e "s/failback .*/failback $fb/")
        printf '%s\n' "$conf" >/etc/multipath.conf
        before=$(dmsetup table "$W")
        reconfigure "$d"
        wait_for "dmsetup table $W | grep -q '${sel%% *}'" 30 >/dev/null && tables=$((tables + 1))
        wait_for "[ \$(active) = 2 ]" 60 >/dev/null || fail "$name: paths not active after reconfigure ($step)"
        [ "$(dmsetup table "$W")" != "$before" ] || echo "  $d: table unchanged by $step"
        sleep 2
    done
    writer_stop "$name" "reconfigures=4 tables_changed=$tables"
    stop "$d"
    RECONF_TABLES=$tables
}
reconf_run mpathd
[ "$ERRORS" = 0 ] && [ "$LOSS" = 0 ] || fail "mpathd: reconfigure under I/O: $(tail -1 "$CASE_OUT/results.txt")"
assert_eq 4 "$RECONF_TABLES" "mpathd: reconfigures whose selector reached the kernel's table"
echo "ok: 4 reconfigures (selector, path_grouping_policy, failback) under writes: no failed write, nothing lost"
reconf_run multipathd
san_teardown

# ------------------------------------------------------------ iSCSI link cuts
ISCSI_CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	polling_interval 2
	no_path_retry queue
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'
iscsi_run() { # TIMEOUTS DAEMON
    local name=iscsi-$1-$2 i
    start "$name" "$2" "$ISCSI_CONF"
    writer_start "$name"
    for ((i = 0; i < 2; i++)); do
        iscsi_link_down "$i"
        wait_for "[ \$(active) = 1 ]" 90 >/dev/null || fail "$name: link $i cut, path not failed"
        sleep 2
        iscsi_link_up "$i"
        wait_for "[ \$(active) = 2 ]" 120 >/dev/null || fail "$name: link $i restored, path not back"
        sleep 1
    done
    iscsi_link_down 0; iscsi_link_down 1
    wait_for "[ \$(active) = 0 ]" 90 >/dev/null || fail "$name: both links cut, paths not failed"
    sleep 3
    iscsi_link_up 0; iscsi_link_up 1
    wait_for "[ \$(active) = 2 ]" 180 >/dev/null || fail "$name: links restored, paths not back"
    sleep 2
    writer_stop "$name" "cuts=3 both_down=1"
    stop "$2"
    [ "$2" = multipathd ] || { [ "$ERRORS" = 0 ] && [ "$LOSS" = 0 ]; } || fail "$name: $(tail -1 "$CASE_OUT/results.txt")"
}
for timeouts in fast default; do
    iscsi_san 1 32 "$timeouts"
    iscsi_pair
    iscsi_run "$timeouts" mpathd
    echo "ok: iSCSI ($timeouts initiator timeouts): link cuts and both links down under writes: no failed write, nothing lost"
    iscsi_run "$timeouts" multipathd
    iscsi_teardown
done
cat "$CASE_OUT/results.txt"
