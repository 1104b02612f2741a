#!/bin/bash
# Guest side of tests/vm/demo (runs as root in the guest, like a case script):
# mpathd as a service on an emulated two-host SAN: start, show the topology,
# fail a path, show it again, bring it back, stop (maps stay).
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

echo "### A SAN of 2 LUNs, each seen through 2 SCSI hosts (scsi_debug, ALUA)"
san_scsi_debug 2 2 >/dev/null
lsscsi

cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths yes
	polling_interval 2
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
echo
echo "### /etc/multipath.conf"
cat /etc/multipath.conf

echo
echo "### mpathd -d (logging to $CASE_OUT/mpathd.log)"
"$MP" -d -s >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "[ \$(dmsetup ls --target multipath | grep -c .) -ge 2 ]" 120 >/dev/null
wait_for "! $MP show status | grep -q '^busy: True'" 60 >/dev/null

echo
echo "### mpathd show topology"
"$MP" show topology
echo
echo "### mpathd show paths"
"$MP" show paths

# (arrays, not `| head`: with pipefail a closed pipe would end the demo)
mapfile -t all_wwids < <(san_wwids)
w=${all_wwids[0]}
mapfile -t w_paths < <(wwid_paths "$w")
p=${w_paths[0]}
echo
echo "### echo offline > /sys/block/$p/device/state   (a path of $w fails)"
path_offline "$p" >/dev/null
wait_for "$MP show paths | grep ' $p ' | grep -q faulty" 30 >/dev/null
"$MP" show map "$w" topology
echo
echo "### reading through /dev/mapper/$w with one path down"
dd if="/dev/mapper/$w" of=/dev/null bs=1M count=8 iflag=direct 2>&1 | tail -1

echo
echo "### echo running > /sys/block/$p/device/state   (it comes back)"
path_online "$p" >/dev/null
wait_for "$MP show paths | grep ' $p ' | grep -q ready" 30 >/dev/null
"$MP" show map "$w" topology

echo
echo "### mpathutil list / mpathd -k (as XenServer's storage manager drives it)"
"$MPATHD_BIN/mpathutil" list
printf 'show maps status\n' | "$MP" -k
echo
echo
echo "### SIGTERM: the daemon stops, the maps stay"
kill -TERM "$PID"; wait "$PID" || true
dmsetup ls --target multipath
