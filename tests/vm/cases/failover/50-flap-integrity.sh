#!/bin/bash
# rig-timeout: 1500
# Nothing lost under path flaps: checksummed O_DIRECT writes through a map
# (examples/integrity_io: block number, generation and checksum in every
# block; the generation the kernel acknowledged is journaled) while its two
# paths flap at random: one path down, both down for a spell (queued with
# no_path_retry queue), one after the other. mpathd is killed with -9
# mid-run and started again (it adopts the map). Afterwards every block is
# read back against the journal: no mismatch and no failed write may show.
# Debian's multipathd runs the same flaps (without the kill) on the same
# LUN; both results are printed as RESULT lines.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"
INTEG="$MPATHD_BIN/examples/integrity_io"
FLAPS=${FLAP_COUNT:-100}
BLOCKS=2048

SAN_DEV_MB=16 san_scsi_debug_active 1 2
mapfile -t P < <(lun_paths 0)
assert_eq 2 "${#P[@]}" "paths of the LUN"
w=$(dev_wwid "${P[0]}")
CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	polling_interval 1
	no_path_retry queue
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

active() { map_active_paths "$w"; }
state() { for d in "$@"; do echo "$STATE" >"/sys/block/$d/device/state"; done; }
down() { STATE=offline state "$@"; }
up() { STATE=running state "$@"; }
nap() { sleep "$(awk -v r=$RANDOM -v lo="$1" -v hi="$2" 'BEGIN { printf "%.2f", lo + (hi - lo) * r / 32767 }')"; }

# flaps NAME COUNT [KILL_AT]: the random flaps; at KILL_AT the daemon is
# killed -9 and restarted after one more flap.
flaps() {
    local name=$1 n=$2 kill_at=${3:-0} i a b
    for ((i = 1; i <= n; i++)); do
        a=${P[$((RANDOM % 2))]}
        b=${P[0]}; [ "$a" = "$b" ] && b=${P[1]}
        case $((RANDOM % 10)) in
        0 | 1 | 2 | 3 | 4) down "$a"; nap 0.2 1.0; up "$a" ;;
        5 | 6 | 7) down "$a" "$b"; nap 0.5 2.5; up "$a" "$b" ;; # all paths down: queued
        *) down "$a"; nap 0.1 0.5; down "$b"; nap 0.3 1.0; up "$a"; nap 0.1 0.5; up "$b" ;;
        esac
        if [ "$i" = "$kill_at" ]; then
            log "$name: kill -9 mid-run"
            pkill -9 -x mpathd
            down "$a"; nap 0.3 1.0; up "$a"
            "$MP" -d -v3 >>"$CASE_OUT/mpathd.log" 2>&1 &
        fi
        wait_for "[ \$(active) = 2 ]" 60 >/dev/null || fail "$name: paths not both active after flap $i"
        nap 0.1 0.4
    done
}

# run NAME COUNT [KILL_AT]: a daemon is running; write, flap, verify.
run() {
    local name=$1 out
    wait_for "[ \$(active) = 2 ]" 120 || fail "$name: map $w without 2 active paths"
    rm -f "$CASE_OUT/stop-$name"
    "$INTEG" write "/dev/mapper/$w" 3600 "$BLOCKS" "$CASE_OUT/journal-$name" "$CASE_OUT/stop-$name" >"$CASE_OUT/write-$name.txt" 2>&1 &
    local writer=$!
    sleep 2
    flaps "$@"
    touch "$CASE_OUT/stop-$name"
    wait "$writer" || fail "$name: the writer failed: $(cat "$CASE_OUT/write-$name.txt")"
    out=$("$INTEG" verify "/dev/mapper/$w" "$BLOCKS" "$CASE_OUT/journal-$name" 2>"$CASE_OUT/verify-$name.err") || true
    echo "RESULT flap-integrity $name flaps=$2 $(cat "$CASE_OUT/write-$name.txt") $out" | tee -a "$CASE_OUT/results.txt"
}

printf '%s\n' "$CONF" >/etc/multipath.conf
mkdir -p /etc/multipath
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90 || fail "no map"
wait_for "[ -b /dev/mapper/$w ]" 30
run mpathd "$FLAPS" $((FLAPS / 2))
pkill -x mpathd; wait_for "! running mpathd" 30
dmsetup remove "$w" 2>/dev/null || true
udev_settle 60

start_peer_multipathd "$CONF"
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90 || fail "multipathd made no map"
wait_for "[ -b /dev/mapper/$w ]" 30
run multipathd "$FLAPS"
stop_peer_multipathd

ours=$(grep " mpathd " "$CASE_OUT/results.txt")
for want in "errors=0" "mismatched=0" "unreadable=0"; do
    case " $ours " in *" $want "*) ;; *) fail "mpathd: $want expected: $ours" ;; esac
done
echo "ok: $FLAPS flaps incl. all-paths-down spells and a kill -9: no failed write, no lost or torn block"
