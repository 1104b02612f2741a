#!/bin/bash
# rig-timeout: 900
# udev claiming of paths: a LUN carrying an LVM PV is hot-added through two
# iSCSI portals while mpathd runs (find_multipaths yes). With mpathd's rule
# (systemd/60-mpathd.rules, `mpathd config claim-path`) both paths end up
# DM_MULTIPATH_DEVICE_PATH=1, SYSTEMD_READY=0, ID_FS_TYPE=mpath_member; the
# second path already on its first (add) event, the first one by the
# change event mpathd sends once the map exists. `pvs` then shows the PV
# once, on the map, without a duplicate warning, and no sd device is held
# by anything but the map.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

# The rule as packaged, calling this build; multipath-tools' own rule
# (installed as the peer) is masked so only ours decides.
sed "s#/usr/sbin/mpathd#$MP#" "$REPO/systemd/60-mpathd.rules" >/etc/udev/rules.d/60-mpathd.rules
ln -sf /dev/null /etc/udev/rules.d/60-multipath.rules
udevadm control --reload
trap 'rm -f /etc/udev/rules.d/60-mpathd.rules /etc/udev/rules.d/60-multipath.rules; udevadm control --reload' EXIT

iscsi_san 1
cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths yes
	user_friendly_names no
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
mkdir -p /etc/multipath
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "[ \$(mpath_map_count) -ge 1 ]" 120
udev_settle

# LUN 1 gets a PV and a VG before it is exported.
modprobe loop
img=$(iscsi_lun_image 1 32)
loop=$(losetup -f --show "$img")
pvcreate -q "$loop"
vgcreate -q vgclaim "$loop"
lvcreate -q -L 8M -n lv vgclaim
vgchange -q -an vgclaim
losetup -d "$loop"

udevadm monitor --udev --property --subsystem-match=block >"$CASE_OUT/uevents.txt" 2>&1 &
MON=$!
before=$(iscsi_paths | tr '\n' ' ')
iscsi_hot_add_lun 1 32
wait_for "[ \$(iscsi_paths | wc -l) -ge 4 ]" 60
new=()
for d in $(iscsi_paths); do
    case " $before " in *" $d "*) ;; *) new+=("$d") ;; esac
done
assert_eq 2 "${#new[@]}" "new paths of the hot-added LUN"
wait_for "[ -n \"\$(dev_wwid ${new[0]})\" ]" 60
w1=$(dev_wwid "${new[0]}")
wait_for "dmsetup table $w1 2>/dev/null | grep -q multipath" 120 || {
    ls -l /dev/mapper; "$MP" show paths reasons; fail "no map for the hot-added LUN $w1"
}
udev_settle
sleep 2
kill "$MON" || true
for d in "${new[@]}"; do
    assert_eq "$w1" "$(dev_wwid "$d")" "WWID of $d"
    props=$(udevadm info --query=property "/dev/$d")
    echo "$props" | grep -E '^(DM_MULTIPATH_DEVICE_PATH|SYSTEMD_READY|ID_FS_TYPE|MPATHD_CLAIM_REASON)=' | sed "s/^/$d: /"
    for kv in DM_MULTIPATH_DEVICE_PATH=1 SYSTEMD_READY=0 ID_FS_TYPE=mpath_member; do
        echo "$props" | grep -qx "$kv" || fail "$d lacks $kv after its map was made"
    done
done
echo "ok: both paths of the hot-added LUN are claimed (DM_MULTIPATH_DEVICE_PATH=1, SYSTEMD_READY=0, ID_FS_TYPE=mpath_member)"

# udev events of one kind (add, change) for one device.
events_of() { # ACTION DEV
    awk -v want="$1" -v dev="DEVNAME=/dev/$2" '
        /^UDEV  \[/ { ev = $3 }
        $0 == dev && ev == want { n++ }
        END { print n + 0 }' "$CASE_OUT/uevents.txt"
}
# The path that came second was claimed on its very first event: before
# blkid or LVM's rules ran on it.
claimed_on_add=()
for d in "${new[@]}"; do
    awk -v dev="DEVNAME=/dev/$d" '
        /^UDEV  \[/ { ev = $3; adddone = 0; inblk = 0 }
        $0 == dev { inblk = 1 }
        $0 == "DM_MULTIPATH_DEVICE_PATH=1" { dm = 1 }
        /^$/ { if (inblk && ev == "add" && dm) found = 1; inblk = 0; dm = 0 }
        END { exit !found }' "$CASE_OUT/uevents.txt" && claimed_on_add+=("$d")
done
[ "${#claimed_on_add[@]}" -ge 1 ] || fail "no path of the new LUN was claimed on its add event"
echo "ok: ${#claimed_on_add[@]} of 2 paths claimed on their add event (the other by the change event after the map)"
# A path udev claimed already needs no change event when its map is made:
# at start-up one per path of the SAN would only make udev run every rule
# again. The daemon logs each one it sends (-v3); udev may see change
# events from elsewhere too (shown, not counted).
sent_to() {
    sed 's/\x1b\[[0-9;]*m//g' "$CASE_OUT/mpathd.log" | grep -c "change uevent sent.* path=$1\$" || true
}
for d in "${new[@]}"; do
    echo "$d: $(events_of change "$d") change event(s) seen by udev, $(sent_to "$d") sent by mpathd"
done
for d in "${claimed_on_add[@]}"; do
    assert_eq 0 "$(sent_to "$d")" "change uevents mpathd sent to $d, claimed on its add event"
done
for d in "${new[@]}"; do
    case " ${claimed_on_add[*]} " in
    *" $d "*) ;;
    *) assert_eq 1 "$(sent_to "$d")" "change uevents mpathd sent to $d, not claimed on add" ;;
    esac
done
echo "ok: mpathd sent change uevents only to paths udev had not claimed"

pvs 2>"$CASE_OUT/pvs.err" | tee "$CASE_OUT/pvs.txt"
cat "$CASE_OUT/pvs.err"
grep -qi duplicate "$CASE_OUT/pvs.err" && fail "pvs warns of duplicate PVs"
assert_eq 1 "$(grep -c vgclaim "$CASE_OUT/pvs.txt")" "PVs of vgclaim"
pv=$(awk '/vgclaim/ { print $1 }' "$CASE_OUT/pvs.txt")
case "$pv" in
/dev/mapper/*|/dev/dm-*) ;;
*) fail "the PV shows on $pv, not on the map" ;;
esac
vgchange -q -ay vgclaim
[ -e /dev/vgclaim/lv ] || fail "the LV on the map did not activate"
for d in "${new[@]}"; do
    holders=$(ls "/sys/block/$d/holders")
    for h in $holders; do
        uuid=$(read_attr "/sys/block/$h/dm/uuid")
        case "$uuid" in mpath-*) ;; *) fail "$d is held by $h ($uuid), not only by its map" ;; esac
    done
done
vgchange -q -an vgclaim
echo "ok: pvs shows vgclaim once, on $pv; no sd path is in use but by its map"
