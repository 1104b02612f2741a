#!/bin/bash
# rig-timeout: 600
# XenServer's storage manager (drivers/mpath_dmp.py) attaching and
# detaching a LUN with mpathd running and only mpathd's `multipath`, run as
# sm runs it: the same argv, the same empty-output and exit-code tests.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

MP=$MPATHD_BIN/multipath
san_scsi_debug 1 2
mapfile -t wwids < <(san_wwids)
SID=${wwids[0]}
mapfile -t paths < <(lun_paths 0)
mkdir -p /etc/multipath
rm -f /etc/multipath/wwids
# find_multipaths strict: no map until the WWID is known, as on a host
# where sm decides what to multipath.
cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths strict
	user_friendly_names no
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF
"$MPATHD_BIN/mpathd" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "$MPATHD_BIN/mpathd show daemon | grep -q 'pid'" 60
wait_for "! $MPATHD_BIN/mpathd show status | grep -q '^busy: True'" 60
assert_eq 0 "$(mpath_map_count)" "maps before attach (strict, WWID unknown)"

# sm's attach.
out=$("$MP" -l "$SID" 2>&1) || true
assert_eq "" "$out" "multipath -l SID output before attach"
out=$("$MP" -ll "$SID" 2>&1) || true
assert_eq "" "$out" "multipath -ll SID output before attach"
"$MP" -a "$SID" || fail "multipath -a SID failed"
valid=""
for d in "${paths[@]}"; do
    if "$MP" -c "/dev/$d" >/dev/null; then valid=$d; break; fi
done
[ -n "$valid" ] || fail "multipath -c said no path of $SID should be multipathed after -a"
echo "ok: -a SID, then -c /dev/$valid exits 0"
for try in 1 2 3; do
    [ -e "/dev/mapper/$SID" ] && break
    "$MP" -r "$SID" || echo "multipath -r $SID: exit $?"
    wait_for "[ -e /dev/mapper/$SID ]" 10 || true
done
[ -e "/dev/mapper/$SID" ] || fail "multipath -r SID did not bring /dev/mapper/$SID"
echo "ok: multipath -r SID made the map through the daemon"
"$MP" -ll "$SID" | tee "$CASE_OUT/ll.txt"
grep -q "active ready running" "$CASE_OUT/ll.txt" || fail "the map's paths are not ready in -ll"
dd if="/dev/mapper/$SID" of=/dev/null bs=64k count=16 iflag=direct || fail "I/O on the attached map"
echo "ok: attached: I/O through /dev/mapper/$SID"
# The daemon knows the map (one writer).
"$MPATHD_BIN/mpathd" show maps | grep -q "$SID" || fail "the daemon does not show the map"

# sm's detach with explicit unmap: -f SID, then -W.
udev_settle 30
ok=0
for try in 1 2 3; do
    if "$MP" -f "$SID"; then ok=1; break; fi
    sleep 4
done
[ "$ok" = 1 ] || fail "multipath -f SID failed 3 times"
wait_for "[ ! -e /dev/mapper/$SID ]" 30 || fail "/dev/mapper/$SID still there after -f"
"$MP" -W || fail "multipath -W failed"
if grep -q "$SID" /etc/multipath/wwids; then fail "-W kept the detached WWID"; fi
sleep 3
[ ! -e "/dev/mapper/$SID" ] || fail "the daemon made the map again after -f"
echo "ok: detached: -f SID removed the map (the daemon holds it off), -W dropped its WWID"
