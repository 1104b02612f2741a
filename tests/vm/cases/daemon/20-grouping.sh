#!/bin/bash
# rig-timeout: 900
# Same tables as Debian's multipathd where the grouping policy matters:
# 2 LUNs x 4 paths, two active/optimized and two active/non-optimized
# each, so failover (4 groups of 1) and group_by_prio (2 groups of 2)
# differ. The policy is pinned for both daemons (multipath-tools 0.9.4 has
# no detect_pgpolicy), and the tables must hold a group of two paths, so a
# daemon grouping by the wrong policy cannot pass.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	path_grouping_policy group_by_prio
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

san_scsi_debug_active 2 4
mapfile -t wwids < <(san_wwids)
assert_eq 2 "${#wwids[@]}" "LUNs"
tables() { dmsetup table --target multipath | sort; }
# groups_of W -> the number of paths in each path group of W's table
groups_of() {
    dmsetup table "$1" | awk '{
        i = 4; nf = $i; i += nf + 1; nh = $i; i += nh + 1; ng = $i; i += 2
        out = ""
        for (g = 0; g < ng; g++) { i++; ns = $i; i += ns + 1; np = $i; na = $(i + 1); i += 2
            out = out np " "; i += np * (na + 1) }
        print out }'
}

start_peer_multipathd "$CONF"
wait_for "[ \$(mpath_map_count) -ge 2 ]" 90
udev_settle 60
peer=$(tables)
echo "peer:"; echo "$peer"
stop_peer_multipathd
wait_for "[ \$(mpath_map_count) -eq 0 ]" 30 || dmsetup remove_all --force
rm -f /etc/multipath/wwids

printf '%s\n' "$CONF" >/etc/multipath.conf
"$MPATHD_BIN/mpathd" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "[ \$(mpath_map_count) -ge 2 ]" 90
udev_settle 60
wait_for "! $MPATHD_BIN/mpathd show status | grep -q '^busy: True'" 60
ours=$(tables)
echo "mpathd:"; echo "$ours"
for w in "${wwids[@]}"; do
    assert_eq "2 2 " "$(groups_of "$w")" "paths per group of $w (group_by_prio, not failover)"
done
assert_eq "$peer" "$ours" "dm tables equal to multipathd's with the policy pinned"
echo "ok: group_by_prio tables (2 groups of 2 paths) equal to multipathd's"
