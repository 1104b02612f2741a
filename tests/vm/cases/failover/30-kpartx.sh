#!/bin/bash
# rig-timeout: 900
# Partitions: a LUN with a partition table gets its partition maps
# (<map>-part1, by kpartx's udev rule, as multipath-tools does), and
# `del map` removes them before the map and leaves nothing behind; with
# skip_kpartx a map gets none (the DM_SUBSYSTEM_UDEV_FLAG1 udev flag).
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

# first_new_path "BEFORE": the first iSCSI path not in the list BEFORE.
first_new_path() {
    local d
    for d in $(iscsi_paths); do
        case " $1 " in *" $d "*) ;; *) echo "$d"; return 0 ;; esac
    done
    return 1
}

[ -e /lib/udev/rules.d/60-kpartx.rules ] || fail "kpartx's udev rule is not installed (package kpartx)"
modprobe loop
iscsi_san 1
# LUNs 1 and 2 carry a partition table with two partitions.
for l in 1 2; do
    img=$(iscsi_lun_image "$l" 32)
    printf 'label: dos\n,8M\n,8M\n' | sfdisk -q "$img"
done
cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths greedy
	user_friendly_names no
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
mkdir -p /etc/multipath
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "[ \$(mpath_map_count) -ge 1 ]" 120
before=$(iscsi_paths | tr '\n' ' ')
iscsi_hot_add_lun 1 32
wait_for "[ \$(iscsi_paths | wc -l) -ge 4 ]" 60
udev_settle
new=$(first_new_path "$before")
wait_for "[ -n \"\$(dev_wwid $new)\" ]" 60
w1=$(dev_wwid "$new")
wait_for "dmsetup table $w1 2>/dev/null | grep -q multipath" 120
wait_for "[ -e /dev/mapper/${w1}-part1 ] && [ -e /dev/mapper/${w1}-part2 ]" 60 || {
    ls -l /dev/mapper; fail "no partition maps for $w1"
}
dmsetup info -c -o name,uuid | tee "$CASE_OUT/dm-before.txt"
grep -q "part1-mpath-$w1" "$CASE_OUT/dm-before.txt" || fail "part1's uuid is not kpartx's partN-mpath-WWID"
echo "ok: $w1 has its partition maps ${w1}-part1 and ${w1}-part2"

# A mounted (open) partition holds the map: del map is refused, nothing
# is removed; closed, del map removes the partitions first, then the map.
exec 7<"/dev/mapper/${w1}-part1"
if "$MP" del map "$w1" >"$CASE_OUT/del-open.txt" 2>&1; then
    cat "$CASE_OUT/del-open.txt"; fail "del map succeeded with a partition open"
fi
cat "$CASE_OUT/del-open.txt"
[ -e "/dev/mapper/$w1" ] || fail "the map went away although its partition is open"
exec 7<&-
"$MP" del map "$w1" || fail "del map failed with nothing open"
wait_for "! dmsetup info $w1 >/dev/null 2>&1 && ! dmsetup info ${w1}-part1 >/dev/null 2>&1 && ! dmsetup info ${w1}-part2 >/dev/null 2>&1" 30 || {
    dmsetup ls; fail "del map left something behind"
}
echo "ok: del map was refused while a partition was open, then removed both partition maps and the map"

# skip_kpartx: a map of LUN 2 gets no partition maps.
pkill -x mpathd; wait_for "! running mpathd" 20
cat >>/etc/multipath.conf <<'CONF'
overrides {
	skip_kpartx yes
}
CONF
"$MP" -d -v3 >"$CASE_OUT/mpathd-skip.log" 2>&1 &
before=$(iscsi_paths | tr '\n' ' ')
iscsi_hot_add_lun 2 32
wait_for "[ \$(iscsi_paths | wc -l) -ge 6 ]" 60
udev_settle
new=$(first_new_path "$before")
wait_for "[ -n \"\$(dev_wwid $new)\" ]" 60
w2=$(dev_wwid "$new")
wait_for "dmsetup table $w2 2>/dev/null | grep -q multipath" 120
udev_settle
sleep 3
udev_settle
[ -e "/dev/mapper/${w2}-part1" ] && fail "skip_kpartx yes, but ${w2}-part1 was made"
udevadm info --query=property "/dev/mapper/$w2" | grep -x 'DM_SUBSYSTEM_UDEV_FLAG1=1' ||
    fail "the map's udev event lacks the skip_kpartx flag"
echo "ok: skip_kpartx: $w2 has no partition maps (DM_SUBSYSTEM_UDEV_FLAG1=1)"
