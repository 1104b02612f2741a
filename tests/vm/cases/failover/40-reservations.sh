#!/bin/bash
# rig-timeout: 900
# Persistent reservations with clients no one here wrote: Debian's
# mpathpersist (multipath-tools 0.9.4) registers, reserves, reads, releases
# and clears on mpathd's map over the two-portal iSCSI SAN (LIO, SPC-3 PR),
# with sg_persist on each path as the witness. mpathd keeps the key
# registered on a path that comes back (and does not when told the map is
# unregistered: the negative control), and a second host (another initiator
# name) fences it off with a preempt-and-abort, as fence_mpath does: mpathd
# then must not register its key again.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"
KEY=0x123abc
KEY2=0xbbb

iscsi_san 1
iscsi_pair
p0=$P0 p1=$P1 w=$W

# Host 2: a session with another initiator name through portal 0, logged in
# before the daemon starts so both programs' configs can blacklist it.
iscsiadm -m iface -I host2 -o new >/dev/null
iscsiadm -m iface -I host2 -o update -n iface.initiatorname -v "${ISCSI_INITIATOR}-host2" >/dev/null
iscsiadm -m discovery -t sendtargets -p "$(iscsi_portal_ip 0)" -I host2 >/dev/null
iscsiadm -m node -T "$ISCSI_IQN" -p "$(iscsi_portal_ip 0):3260" -I host2 --login >/dev/null
wait_for "[ \$(iscsi_paths | wc -l) -ge 3 ]" 60 || fail "host 2's session made no path"
udev_settle
h2=$(iscsi_paths | grep -vx -e "$p0" -e "$p1")
assert_eq "$w" "$(dev_wwid "$h2")" "host 2 sees the same LUN"
log "host 1 paths $p0 $p1, host 2 path $h2"

cat >/etc/multipath.conf <<CONF
defaults {
	find_multipaths greedy
	user_friendly_names no
	polling_interval 2
	reservation_key file
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
	devnode "^$h2\$"
}
CONF

# keys DEV -> how many registrations hold KEY (one per I_T nexus)
keys() { sg_persist -n -i -k "/dev/$1" 2>/dev/null | grep -ci "^ *${2:-$KEY}\$" || true; }
dm_state() { "$MP" show paths format '%d %t' | awk -v d="$1" '$1 == d { print $2 }'; }
pr() { "$MP" "$@" 2>&1; } # (exits non-zero on a fail reply)

"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90 || fail "no map"
wait_for "[ -b /dev/mapper/$w ]" 30
wait_for "! $MP show status | grep -q '^busy: True'" 60
assert_eq unset "$(pr getprstatus map "$w")" "state before any key was set"
assert_eq "none" "$(pr getprkey map "$w")" "no key yet"

# --- register and reserve through the map
mpathpersist --out --register --param-sark=$KEY "/dev/mapper/$w" || fail "mpathpersist --register"
assert_eq 2 "$(keys "$p0")" "registrations after mpathpersist --register (one per path)"
assert_eq set "$(pr getprstatus map "$w")" "prstatus after --register"
assert_eq "$KEY" "$(pr getprkey map "$w")" "prkey after --register"
grep -qx "0x0000000000123abc $w" /etc/multipath/prkeys || fail "prkeys file: $(cat /etc/multipath/prkeys)"
mpathpersist --out --reserve --param-rk=$KEY --prout-type=5 "/dev/mapper/$w" || fail "mpathpersist --reserve"
mpathpersist --in -k "/dev/mapper/$w" | tee "$CASE_OUT/in-k.txt"
grep -qi "$KEY" "$CASE_OUT/in-k.txt" || fail "--in -k does not list the key"
mpathpersist --in -r "/dev/mapper/$w" | tee "$CASE_OUT/in-r.txt"
grep -qi "Key = $KEY" "$CASE_OUT/in-r.txt" || fail "--in -r: no reservation with the key"
grep -qi "Write Exclusive, registrants only" "$CASE_OUT/in-r.txt" || fail "--in -r: not type 5"
dd if=/dev/zero of="/dev/mapper/$w" bs=4k count=16 oflag=direct status=none || fail "write as the reservation holder"
"$MP" show maps json | grep -q "\"pr_status\" : \"set\"" || fail "show maps json has no PR state"
echo "ok: mpathpersist registered (2 nexuses), reserved (type 5), read keys and reservation; prkeys file and prstatus follow"

# --- a path that comes back is registered again by the daemon
sg_persist -n --out --register --param-rk=$KEY --param-sark=0 "/dev/$p1" >/dev/null || fail "unregister $p1"
assert_eq 1 "$(keys "$p0")" "registrations with $p1's nexus unregistered"
"$MP" fail path "$p1" >/dev/null
wait_for "[ \$(keys $p0) = 2 ]" 30 || fail "mpathd did not register the key again through $p1"
wait_for "[ \"\$(dm_state $p1)\" = active ]" 30 || fail "$p1 not reinstated"
echo "ok: a failed path came back registered (REGISTER AND IGNORE EXISTING KEY before reinstating)"

# Negative control: with the map marked unregistered, nothing is done.
assert_eq ok "$(pr unsetprstatus map "$w")" "unsetprstatus"
sg_persist -n --out --register --param-rk=$KEY --param-sark=0 "/dev/$p1" >/dev/null
"$MP" fail path "$p1" >/dev/null
wait_for "[ \"\$(dm_state $p1)\" = active ]" 30 || fail "$p1 not reinstated (control)"
sleep 6
assert_eq 1 "$(keys "$p0")" "registrations after a comeback with prstatus unset (control)"
# setprstatus (what mpathpersist sends) brings the unregistered path in.
assert_eq ok "$(pr setprstatus map "$w")" "setprstatus"
wait_for "[ \$(keys $p0) = 2 ]" 30 || fail "setprstatus did not register the key through $p1"
echo "ok: control: prstatus unset -> no registration; setprstatus -> registered"

# --- a link cut and restored: the returned path is checked and registered
iscsi_link_down 1
wait_for "[ \"\$(dm_state $p1)\" = failed ]" 60 || fail "$p1 not failed after the cut"
n_before=$(grep -c "reservation key registered through the path" "$CASE_OUT/mpathd.log" || true)
iscsi_link_up 1
wait_for "[ \"\$(dm_state $p1)\" = active ]" 90 || fail "$p1 not back after the restore"
n_after=$(grep -c "reservation key registered through the path" "$CASE_OUT/mpathd.log" || true)
[ "$n_after" -gt "$n_before" ] || fail "no registration step for $p1 after the restore"
assert_eq 2 "$(keys "$p0")" "registrations after the link came back"
echo "ok: link cut and restored: $p1 registered again before it was reinstated"

# --- a restart: the state comes back from the prkeys file and the array
pkill -x mpathd
wait_for "! running mpathd" 30 || fail "mpathd did not stop"
"$MP" -d -v3 >>"$CASE_OUT/mpathd.log" 2>&1 &
wait_for "$MP show status 2>/dev/null | grep -q '^busy: False'" 60 || fail "mpathd did not come back"
wait_for "[ \"\$($MP getprstatus map $w)\" = set ]" 30 || fail "prstatus after a restart: $(pr getprstatus map "$w")"
assert_eq "$KEY" "$(pr getprkey map "$w")" "key after a restart (from the prkeys file)"
assert_eq 2 "$(keys "$p0")" "registrations after a restart"
echo "ok: restarted: prstatus set again from the array, key from the prkeys file"

# --- release, then reserve again for the fencing
mpathpersist --out --release --param-rk=$KEY --prout-type=5 "/dev/mapper/$w" || fail "mpathpersist --release"
mpathpersist --in -r "/dev/mapper/$w" | grep -qi "no reservation" || fail "--release left a reservation"
mpathpersist --out --reserve --param-rk=$KEY --prout-type=5 "/dev/mapper/$w" || fail "reserve again"

# --- bad input: clear replies, state unchanged
pr setprkey map "$w" key 0xZZ >"$CASE_OUT/badkey.txt" || true
cat "$CASE_OUT/badkey.txt"
grep -q "invalid reservation key" "$CASE_OUT/badkey.txt" || fail "bad key not refused clearly"
assert_eq "device not found" "$(pr getprstatus map nomap)" "unknown map"
assert_eq "$KEY" "$(pr getprkey map "$w")" "key after bad input"
assert_eq set "$(pr getprstatus map "$w")" "state after bad input"
rc=0; sg_persist -n --out --reserve --param-rk=0x999 --prout-type=5 "/dev/$h2" >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "an unregistered host reserved"
echo "ok: bad key, unknown map and a conflicting reserve refused; state unchanged"

# --- host 2 fences host 1 off (fence_mpath's preempt-and-abort)
sg_persist -n --out --register --param-sark=$KEY2 "/dev/$h2" >/dev/null || fail "host 2 register"
sg_persist -n --out --preempt-abort --param-rk=$KEY2 --param-sark=$KEY --prout-type=5 "/dev/$h2" >/dev/null || fail "host 2 preempt"
assert_eq 0 "$(keys "$h2")" "host 1's registrations after the preempt"
rc=0; dd if=/dev/zero of="/dev/mapper/$w" bs=4k count=1 oflag=direct status=none 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "a fenced host could still write"
"$MP" fail path "$p1" >/dev/null
wait_for "[ \"\$(dm_state $p1)\" = active ]" 30 || fail "$p1 not reinstated after the preempt"
sleep 6
assert_eq 0 "$(keys "$h2")" "host 1 registered itself again after being fenced"
grep -q "preempted by another host" "$CASE_OUT/mpathd.log" || fail "no log of the preempt"
echo "ok: host 2 preempted host 1: writes refused, and mpathd did not register again"

# --- clean up through the tools: host 2 clears; host 1 registers, clears
sg_persist -n --out --clear --param-rk=$KEY2 "/dev/$h2" >/dev/null || fail "host 2 clear"
mpathpersist --out --register --param-sark=$KEY "/dev/mapper/$w" || fail "register again"
assert_eq set "$(pr getprstatus map "$w")" "state after registering again"
mpathpersist --out --clear --param-rk=$KEY "/dev/mapper/$w" || fail "mpathpersist --clear"
assert_eq 0 "$(keys "$p0")" "registrations after --clear"
assert_eq unset "$(pr getprstatus map "$w")" "state after --clear"
assert_eq none "$(pr getprkey map "$w")" "key after --clear"
grep -q "^#x0000000000123abc $w" /etc/multipath/prkeys || fail "prkeys line not commented out: $(cat /etc/multipath/prkeys)"
echo "ok: --clear: no registrations, prstatus unset, key gone from the prkeys file"
