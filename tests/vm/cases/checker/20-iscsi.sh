#!/bin/bash
# rig-timeout: 900
# Seed 001's layout over iSCSI (two portals on two subnets): cutting one
# link fails that path while a reader keeps reading on the other; restoring
# the link reinstates it; swapping the target's ALUA states regroups the
# map (the optimized port's path group first).
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

iscsi_san 1
mapfile -t paths < <(iscsi_paths)
assert_eq 2 "${#paths[@]}" "iSCSI paths"
for d in "${paths[@]}"; do
    case "$(iscsi_path_link "$d")" in 0) p0=$d ;; 1) p1=$d ;; esac
done
w=$(dev_wwid "$p0")
mm0=$(dev_majmin "$p0"); mm1=$(dev_majmin "$p1")
touch_paths() { for d in "$p0" "$p1"; do dd if="/dev/$d" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null || true; done; }
iscsi_set_alua a ao
iscsi_set_alua b an
touch_paths
wait_for "[ \"\$(path_access_state $p1)\" = active/non-optimized ]" 30

cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths greedy
	polling_interval 2
	max_polling_interval 4
	failback immediate
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90
wait_for "! $MP show status | grep -q '^busy: True'" 60
"$MP" show topology
first_group_dev() { dmsetup table "$w" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) { print $i; exit } }'; }
wait_for "[ \"\$(first_group_dev)\" = $mm0 ]" 30
echo "ok: optimized path $p0 ($mm0) leads"

( while :; do dd if="/dev/mapper/$w" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null || echo ERR >>"$CASE_OUT/reader.err"; sleep 0.2; done ) &
READER=$!

iscsi_link_down 0
wait_for "dmsetup status $w | grep -q '$mm0 F'" 60
"$MP" show paths
iscsi_link_up 0
wait_for "dmsetup status $w | grep -q '$mm0 A'" 60
echo "ok: link cut failed $p0, restore reinstated it"

# Swap the ALUA states: the map regroups with $p1 first.
iscsi_set_alua a an
iscsi_set_alua b ao
touch_paths
wait_for "[ \"\$(path_access_state $p1)\" = active/optimized ]" 30
wait_for "[ \"\$(first_group_dev)\" = $mm1 ]" 60
"$MP" show topology
echo "ok: ALUA swap regrouped the map"

# A port in ALUA standby answers TUR with NOT READY 04/0b: ghost.
iscsi_set_alua a standby
touch_paths
wait_for "$MP show paths | grep ' $p0 ' | grep -q ghost" 30
"$MP" show paths
echo "ok: standby port's path $p0 is ghost"
iscsi_set_alua a ao

kill "$READER"; wait "$READER" 2>/dev/null || true
[ ! -s "$CASE_OUT/reader.err" ] || fail "reader saw I/O errors: $(wc -l <"$CASE_OUT/reader.err")"
echo "ok: reader never failed"
kill -TERM "$PID"; wait "$PID" || true
