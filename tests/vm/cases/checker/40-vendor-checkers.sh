#!/bin/bash
# rig-timeout: 600
# Vendor checkers and prioritizers on a device that is not their array:
# scsi_debug answers VPD 0x80 and TUR (hp_sw: up, prio 4) but has no RDAC
# volume access page (rdac: down, and show paths reasons says why), as an
# admin would see after pasting the wrong vendor stanza.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
MP="$MPATHD_BIN/mpathd"

san_scsi_debug 1 2
mapfile -t wwids < <(san_wwids)
w=${wwids[0]}
conf() { # CHECKER PRIO
    cat >/etc/multipath.conf <<CONF
defaults {
	find_multipaths greedy
	polling_interval 2
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
devices {
	device {
		vendor "Linux"
		product "scsi_debug"
		detect_checker no
		detect_prio no
		path_checker $1
		prio $2
	}
}
CONF
}
conf hp_sw hp_sw
"$MP" -d -v3 >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "dmsetup table $w 2>/dev/null | grep -q multipath" 90
wait_for "! $MP show status | grep -q '^busy: True'" 60
"$MP" show paths format '%d %c %T %p' | tee "$CASE_OUT/hp_sw.txt"
assert_eq 2 "$(awk '$2 == "hp_sw" && $3 == "ready" && $4 == 4' "$CASE_OUT/hp_sw.txt" | grep -c .)" "paths hp_sw finds up with prio 4"

conf rdac rdac
kill -HUP "$PID"
rdac_down() { "$MP" show paths format '%d %c %T' | awk '$2 == "rdac" && $3 == "faulty"' | grep -c .; }
wait_for "[ \$(rdac_down) -eq 2 ]" 60 || fail "rdac did not fail the paths of a device without VPD 0xC9"
"$MP" show paths reasons | tee "$CASE_OUT/reasons.txt"
grep -q "rdac checker reports path is down" "$CASE_OUT/reasons.txt" || fail "show paths reasons does not say what rdac found"
echo "ok: hp_sw up with prio 4 on scsi_debug; rdac down there, with the reason shown"
