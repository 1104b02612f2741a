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
iscsi_pair
p0=$P0 p1=$P1 w=$W mm0=$MM0 mm1=$MM1
paths=("${ISCSI_PAIR[@]}")
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

# --- the iSCSI transport details the daemon reads, against open-iscsi and
# sysfs: protocol (%P), target IQN (%n target WWNN), host adapter (%a: the
# iSCSI host's ipaddress, the initiator's address on that link), and what
# multipathd leaves undefined for iSCSI (%N %R %r).
iscsiadm -m session -P3 >"$CASE_OUT/iscsiadm-P3.txt"
# "Attached scsi disk sdX" closes a session's block: dev IQN portal iface_ip
awk '/^Target: / { t = $2 }
     /Persistent Portal: / { pp = $3; sub(/,[0-9]+$/, "", pp) }
     /Iface IPaddress: / { ip = $3 }
     /Attached scsi disk / { print $4, t, pp, ip }' "$CASE_OUT/iscsiadm-P3.txt" | sort >"$CASE_OUT/iscsi-iscsiadm.txt"
: >"$CASE_OUT/iscsi-sysfs.txt"
: >"$CASE_OUT/iscsi-fixture.txt"
for d in "${paths[@]}"; do
    p=$(cd -P "/sys/block/$d" && pwd)
    sess=${p#*/session}; sess=session${sess%%/*}
    host=${p#*/host}; host=host${host%%/*}
    conn=$(echo /sys/class/iscsi_session/"$sess"/device/connection*/iscsi_connection/connection*)
    echo "$d $(read_attr "/sys/class/iscsi_session/$sess/targetname")" \
        "$(read_attr "$conn/persistent_address"):$(read_attr "$conn/persistent_port")" \
        "$(read_attr "/sys/class/iscsi_host/$host/ipaddress")" >>"$CASE_OUT/iscsi-sysfs.txt"
    n=$(iscsi_path_link "$d")
    echo "$d $ISCSI_IQN $(iscsi_portal_ip "$n"):3260 192.168.20$((n + 1)).1" >>"$CASE_OUT/iscsi-fixture.txt"
done
sort -o "$CASE_OUT/iscsi-sysfs.txt" "$CASE_OUT/iscsi-sysfs.txt"
sort -o "$CASE_OUT/iscsi-fixture.txt" "$CASE_OUT/iscsi-fixture.txt"
cat "$CASE_OUT/iscsi-iscsiadm.txt"
diff -u "$CASE_OUT/iscsi-iscsiadm.txt" "$CASE_OUT/iscsi-sysfs.txt" || fail "iscsiadm -P3 and sysfs disagree"
diff -u "$CASE_OUT/iscsi-fixture.txt" "$CASE_OUT/iscsi-sysfs.txt" || fail "the sessions are not the fixture's (IQN, portal per link, initiator address per link)"
ISCSI_FMT="%d %P %n %a %N %R %r"
"$MP" show paths raw format "$ISCSI_FMT" | sort >"$CASE_OUT/iscsi-mpathd.txt"
cat "$CASE_OUT/iscsi-mpathd.txt"
awk '{ print $1, "scsi:iscsi", $2, $4, "[undef] [undef] [undef]" }' "$CASE_OUT/iscsi-iscsiadm.txt" >"$CASE_OUT/iscsi-expected.txt"
diff -u "$CASE_OUT/iscsi-expected.txt" "$CASE_OUT/iscsi-mpathd.txt" || fail "mpathd's iSCSI transport fields differ from iscsiadm"
echo "ok: show paths %P %n %a (protocol, target IQN, initiator address) == iscsiadm -m session -P3 == sysfs for ${#paths[@]} paths"
# The portal is read too (discovery's MPATHD_ISCSI_PORTAL property); no
# multipathd wildcard prints it, so check it through the discovery reader.
"$MPATHD_BIN/examples/discover" >"$CASE_OUT/discover.json"
python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["paths"]:
    props = p.get("properties", {})
    print(p["dev"], p.get("target_wwnn"), props.get("MPATHD_ISCSI_PORTAL"), p.get("host_adapter"))
' "$CASE_OUT/discover.json" | sort >"$CASE_OUT/iscsi-discover.txt"
diff -u "$CASE_OUT/iscsi-iscsiadm.txt" "$CASE_OUT/iscsi-discover.txt" || fail "discovery's iSCSI target/portal/address differ from iscsiadm"
echo "ok: discovery reads target IQN, portal and initiator address as iscsiadm reports them"

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

# Debian's multipathd prints the same transport fields for the same paths.
start_peer_multipathd
wait_for "[ \$(multipathd show paths raw format '%d' | grep -c '^sd') -ge ${#paths[@]} ]" 60
multipathd show paths raw format "$ISCSI_FMT" | sort >"$CASE_OUT/iscsi-multipathd.txt"
cat "$CASE_OUT/iscsi-multipathd.txt"
stop_peer_multipathd
diff -u "$CASE_OUT/iscsi-multipathd.txt" "$CASE_OUT/iscsi-mpathd.txt" || fail "iSCSI transport fields differ from Debian multipathd's"
echo "ok: iSCSI transport fields == Debian multipathd's"
