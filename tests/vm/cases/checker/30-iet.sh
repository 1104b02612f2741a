#!/bin/bash
# rig-timeout: 600
# The iet prioritizer on seed 001's two-portal iSCSI layout: the path
# through the portal named by prio_args preferredip gets prio 20, the other
# 10, so group_by_prio puts it first; naming the other portal (SIGHUP)
# swaps them.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

iscsi_san 1
iscsi_pair
p0=$P0 p1=$P1 w=$W mm0=$MM0 mm1=$MM1

conf() { # PREFERRED_LINK
    cat >/etc/multipath.conf <<CONF
defaults {
	find_multipaths greedy
	polling_interval 2
	failback immediate
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
devices {
	device {
		vendor "LIO-ORG"
		product ".*"
		detect_prio no
		prio iet
		prio_args "preferredip=$(iscsi_portal_ip "$1")"
		path_grouping_policy group_by_prio
	}
}
CONF
}
# first_group_dev -> MAJ:MIN of the first path of the map's first group
first_group_dev() { dmsetup table "$w" | awk '{ i = 6 + $5; i += 1 + $(i); i += 2; i += 2 + $(i + 1); print $(i + 2) }'; }

conf 1
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90
wait_for "! $MP show status | grep -q '^busy: True'" 60
"$MP" show paths | tee "$CASE_OUT/paths-1.txt"
dmsetup table "$w"
assert_eq 20 "$("$MP" show paths format '%d %p' | awk -v d="$p1" '$1 == d { print $2 }')" "prio of the path through the preferred portal"
assert_eq 10 "$("$MP" show paths format '%d %p' | awk -v d="$p0" '$1 == d { print $2 }')" "prio of the other path"
assert_eq "$mm1" "$(first_group_dev)" "first path group: the preferred portal's path"

conf 0
kill -HUP "$PID"
wait_for "[ \"\$(first_group_dev)\" = $mm0 ]" 60 || fail "preferring the other portal did not swap the groups"
assert_eq 20 "$("$MP" show paths format '%d %p' | awk -v d="$p0" '$1 == d { print $2 }')" "prio after preferring the other portal"
echo "ok: iet: the preferred portal's path has prio 20 and leads the map, in both directions"

# The redundancy audit: two portals on two subnets, two sessions, two
# controllers: nothing shared. With one link cut, one usable path is left:
# `mpathutil check` names it and exits non-zero.
"$MPATHD_BIN/mpathutil" check | tee "$CASE_OUT/check-ok.txt" || fail "mpathutil check failed on independent paths: $(cat "$CASE_OUT/check-ok.txt")"
grep -q ": ok: 2 usable paths" "$CASE_OUT/check-ok.txt" || fail "check did not see 2 usable paths"
iscsi_link_down 1
wait_for "$MP show paths format '%d %t' | awk -v d=$p1 '\$1 == d && \$2 == \"failed\"' | grep -q ." 90 || fail "path $p1 not failed after the link cut"
rc=0; "$MPATHD_BIN/mpathutil" check >"$CASE_OUT/check-spof.txt" || rc=$?
cat "$CASE_OUT/check-spof.txt"
[ "$rc" != 0 ] || fail "mpathutil check exited 0 with one usable path"
grep -q "spof: only one usable path ($p0)" "$CASE_OUT/check-spof.txt" || fail "check did not name the single path"
rc=0; "$MPATHD_BIN/mpathutil" check --json >"$CASE_OUT/check-spof.json" || rc=$?
[ "$rc" != 0 ] || fail "mpathutil check --json exited 0 with one usable path"
/usr/bin/python3 -c 'import json,sys; m = json.load(open(sys.argv[1]))["maps"][0]; assert m["usable_paths"] == 1 and m["findings"][0]["kind"] == "spof", m' "$CASE_OUT/check-spof.json" || fail "check --json"
iscsi_link_up 1
echo "ok: mpathutil check: independent paths ok (exit 0); a cut link leaves one path, named (exit 1)"
