#!/bin/bash
# rig-timeout: 900
# The redundancy audit (`mpathutil check`) on layouts that share something
# seed 001 and 003 warn about, each with the exact finding it must name:
#   one-link  two portals, two sessions, one initiator NIC: the NIC and its
#             subnet are the single point of failure;
#   bond      two NICs bonded under one address: the bond is the single
#             point, and bonding under multipathing gets its warning;
#   loopback  two paths through one SCSI host: a shared HBA.
# The independent layout (two NICs on two subnets, exit 0) is checker/30-iet.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths greedy
	polling_interval 2
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF

# run_audit NAME WWID: start mpathd on the present paths, wait for WWID's
# map with 2 active paths, write check output to $CASE_OUT/NAME.{txt,json};
# sets RC (check's exit code).
run_audit() {
    local name=$1 w=$2
    "$MP" -d -v3 >"$CASE_OUT/mpathd-$name.log" 2>&1 &
    PID=$!
    wait_for "dmsetup status $w 2>/dev/null | grep -q multipath" 90 || fail "$name: no map for $w"
    wait_for "[ \$($MP show maps format '%n %N' | awk -v w=$w '\$1 == w { print \$2 }') = 2 ] 2>/dev/null" 60 ||
        fail "$name: map $w has not 2 paths"
    wait_for "$MP show paths format '%d %T' | grep -c ready | grep -qx 2" 60 || fail "$name: paths not ready"
    RC=0
    "$MPATHD_BIN/mpathutil" check >"$CASE_OUT/$name.txt" || RC=$?
    "$MPATHD_BIN/mpathutil" check --json >"$CASE_OUT/$name.json" || true
    echo "--- $name (exit $RC)"
    cat "$CASE_OUT/$name.txt"
}

stop_mpathd() {
    kill "$PID"
    wait "$PID" || true
    dmsetup remove_all >/dev/null 2>&1 || true
}

# findings NAME -> the number of findings in NAME.json
findings() { /usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["maps"][0]["findings"]))' "$CASE_OUT/$1.json"; }

expect() { # NAME TEXT
    grep -qF -- "$2" "$CASE_OUT/$1.txt" || fail "$1: check did not say '$2'"
}

ISCSI_LAYOUT=one-link
iscsi_san 1
iscsi_pair
run_audit one-link "$W"
[ "$RC" != 0 ] || fail "one-link: check exited 0"
expect one-link "spof: all 2 paths go through ini0 (192.168.201.0/24)"
assert_eq 1 "$(findings one-link)" "one-link: findings (only the NIC is shared)"
stop_mpathd
iscsi_teardown
echo "ok: one initiator NIC for both sessions is named with its subnet (exit $RC)"

ISCSI_LAYOUT=bond
# The bond fixture can fail to come up right after the one-link layout
# (discovery unanswered for 60 s; iscsi_diag prints why): that is the
# fixture, not the audit under test, so it is built once more before the
# case gives up.
iscsi_san 1 || { log "bond fixture did not come up: building it once more"; iscsi_teardown; sleep 2; iscsi_san 1; }
iscsi_pair
run_audit bond "$W"
[ "$RC" != 0 ] || fail "bond: check exited 0"
expect bond "spof: all 2 paths go through rigbond0 (192.168.201.0/24)"
expect bond "go through bond rigbond0: bonding under iSCSI multipathing adds no redundancy"
assert_eq 2 "$(findings bond)" "bond: findings"
stop_mpathd
iscsi_teardown
echo "ok: a bond under both sessions is named, with the bonding warning (exit $RC)"

loop_shared_host
lw=$(dev_wwid "${LOOP_PATHS[0]}")
assert_eq "$lw" "$(dev_wwid "${LOOP_PATHS[1]}")" "the two loopback paths' WWID"
host=$(dev_hctl "${LOOP_PATHS[0]}")
host=${host%%:*}
run_audit loopback "$lw"
[ "$RC" != 0 ] || fail "loopback: check exited 0"
expect loopback "spof: all 2 paths go through SCSI host $host"
stop_mpathd
loop_teardown
echo "ok: two paths through one SCSI host are named as a shared HBA (exit $RC)"
