#!/bin/bash
# rig-timeout: 900
# The drop-in swap: Debian's multipath-tools serves two maps with a reader
# on one; mpathd-multipath-tools replaces it (dpkg removes multipath-tools:
# Conflicts + Replaces) and mpathd, started under the name multipathd,
# adopts the maps; `pidof -s /sbin/multipathd`, `multipath -ll` and
# `multipathd show topology` answer as sm expects. Then the reverse swap
# back to multipath-tools (rebuilt from its installed files, since the
# guest has no network). The reader never sees an I/O error.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

deb=$(ls "$REPO"/target/debian/mpathd_*.deb 2>/dev/null | head -1)
compat=$(ls "$REPO"/target/debian/mpathd-multipath-tools_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && [ -n "$compat" ] || fail "no .debs under target/debian (tests/run-all builds them)"
dpkg -s mpathd >/dev/null 2>&1 || dpkg -i --no-triggers "$deb" >/dev/null
dpkg -s multipath-tools | grep -q "install ok installed" || fail "multipath-tools is not installed in the guest"

# repack PKG OUT.deb: the installed package rebuilt from its files.
repack() {
    local pkg=$1 out=$2 root f s
    root=$(mktemp -d)
    while read -r f; do
        # Files and symlinks to files (not /lib, a symlink to usr/lib).
        if [ -f "$f" ] || { [ -L "$f" ] && [ ! -d "$f" ]; }; then echo "${f#/}"; fi
    done < <(dpkg-query -L "$pkg") >"$root.list"
    tar -C / --no-recursion -cf - -T "$root.list" | tar -C "$root" -xf -
    mkdir -p "$root/DEBIAN"
    # The control fields (with their continuation lines), not dpkg's own
    # (Status, Conffiles).
    dpkg-query -s "$pkg" | awk '/^[^ ]/ { keep = $1 ~ /^(Package|Version|Architecture|Maintainer|Installed-Size|Pre-Depends|Depends|Recommends|Suggests|Breaks|Conflicts|Replaces|Provides|Section|Priority|Multi-Arch|Homepage|Description):$/ } keep' >"$root/DEBIAN/control"
    for s in preinst postinst prerm postrm conffiles; do
        [ -e "/var/lib/dpkg/info/$pkg.$s" ] && cp "/var/lib/dpkg/info/$pkg.$s" "$root/DEBIAN/$s"
    done
    dpkg-deb -Zgzip --root-owner-group --build "$root" "$out" >/dev/null
    rm -rf "$root"
}
repack multipath-tools "$CASE_OUT/multipath-tools.deb"
echo "ok: multipath-tools repacked for the reverse swap"

CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	path_grouping_policy group_by_prio
	no_path_retry queue
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'
san_scsi_debug 2 2
mapfile -t wwids < <(san_wwids)
w=${wwids[0]}
start_peer_multipathd "$CONF"
wait_for "[ \$(mpath_map_count) -ge 2 ]" 90
udev_settle 60
( while :; do dd if="/dev/mapper/$w" of=/dev/null bs=64k count=64 iflag=direct 2>>"$CASE_OUT/reader.err" || echo "READ ERROR" >>"$CASE_OUT/reader.err"; done ) &
READER=$!
sleep 2
before=$(mp_tables)

# Swap: Debian's daemon goes, the drop-in comes in its place.
multipathd shutdown >/dev/null
wait_for "! running multipathd" 30
PEER_MULTIPATHD_PID=
dpkg -i --no-triggers "$compat" 2>&1 | tee "$CASE_OUT/dpkg-compat.txt"
if dpkg -s multipath-tools 2>/dev/null | grep -q "install ok installed"; then
    fail "installing mpathd-multipath-tools left multipath-tools installed"
fi
assert_eq /usr/sbin/mpathd "$(readlink -f /sbin/multipathd)" "/sbin/multipathd"
assert_eq /usr/lib/mpathd/multipath "$(readlink -f /sbin/multipath)" "/sbin/multipath"
[ -e /lib/systemd/system/multipathd.service ] || fail "no multipathd.service"
grep -q "ExecStart=/usr/sbin/multipathd" /lib/systemd/system/multipathd.service || fail "multipathd.service does not run mpathd"
/usr/sbin/multipathd -d -s >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "/usr/sbin/multipathd show maps | grep -q $w" 60
wait_for "! /usr/sbin/multipathd show status | grep -q '^busy: True'" 60
assert_eq "$PID" "$(pidof -s /sbin/multipathd)" "pidof -s /sbin/multipathd"
assert_eq "$before" "$(mp_tables)" "tables after the swap"
if grep -E "creating map|reloading map" "$CASE_OUT/mpathd.log"; then fail "the swap reloaded maps"; fi
/usr/sbin/multipath -ll | tee "$CASE_OUT/ll.txt"
grep -q "^$w dm-" "$CASE_OUT/ll.txt" || fail "multipath -ll (ours, installed) lacks $w"
multipathd show topology | grep -q "^$w dm-" || fail "multipathd show topology lacks $w"
# The map-side udev rule: a map with usable paths is ready for the layers
# above (its `multipath -U` answered 0).
[ -f /lib/udev/rules.d/56-mpathd-dm.rules ] || fail "no map-side udev rule"
dm=$(basename "$(readlink -f "/dev/mapper/$w")")
udevadm trigger --action=change "/sys/block/$dm"
udev_settle 60
udevadm info --query=property --name="/dev/$dm" | grep -q '^MPATH_DEVICE_READY=1$' || fail "the map-side rule did not mark $w ready"
echo "ok: swapped to mpathd: maps adopted, pidof, multipath -ll and show topology answer, the map is ready in udev"

# And back.
kill -TERM "$PID"; wait "$PID" || true
dpkg -r --no-triggers mpathd-multipath-tools >/dev/null
dpkg -i --no-triggers "$CASE_OUT/multipath-tools.deb" >/dev/null
[ -x /sbin/multipathd ] && [ ! -L /sbin/multipathd ] || fail "multipath-tools' multipathd not back"
start_peer_multipathd "$CONF"
wait_for "multipathd show maps | grep -q $w" 60
assert_eq "$before" "$(mp_tables)" "tables after the swap back"
sleep 2
kill "$READER"; wait "$READER" 2>/dev/null || true
if grep -q "READ ERROR" "$CASE_OUT/reader.err"; then cat "$CASE_OUT/reader.err"; fail "the reader saw I/O errors across the swaps"; fi
echo "ok: swapped back to multipath-tools; the reader never saw an I/O error"
