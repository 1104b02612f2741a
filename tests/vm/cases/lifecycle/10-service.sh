#!/bin/bash
# rig-timeout: 900
# mpathd as a service: the .deb built on the host installs in the guest; the
# unit's ExecStart runs under a NOTIFY_SOCKET that reports READY=1 only after
# maps exist; SIGHUP applies a changed configuration and refuses a bad one;
# SIGTERM leaves maps and a running reader intact; a restart adopts them;
# man pages and --help are there.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

deb=$(ls "$REPO"/target/debian/mpathd_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no .deb under target/debian (tests/run-all builds it)"
log "installing $deb"
# --no-triggers: man-db's index rebuild takes minutes under TCG.
dpkg -i --no-triggers "$deb"
[ -x /usr/sbin/mpathd ] && [ -x /usr/sbin/mpathutil ] || fail "binaries not installed"
[ -f /lib/systemd/system/mpathd.service ] || fail "unit not installed"
[ -L /usr/sbin/multipathd ] || [ -x /usr/sbin/multipathd ] || fail "multipathd name missing"
[ -x /usr/lib/mpathd/multipath ] || fail "multipath command not installed"
MANPATH=/usr/share/man man -w mpathd | grep -q mpathd.8 || fail "man mpathd"
MANPATH=/usr/share/man man -w 5 mpathd.conf | grep -q mpathd.conf.5 || fail "man 5 mpathd.conf"
MANPATH=/usr/share/man man -w 8 mpathd-multipath | grep -q mpathd-multipath.8 || fail "man 8 mpathd-multipath"
/usr/sbin/mpathd --help | grep -q -- "-k" || fail "--help incomplete"
echo "ok: package contents, man pages, --help"

san_scsi_debug 2 2
mapfile -t wwids < <(san_wwids)

cat >/etc/multipath.conf <<'CONF'
defaults {
	find_multipaths greedy
	polling_interval 2
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
CONF

# The unit's own command line.
execstart=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/mpathd.service)
log "ExecStart: $execstart"
python3 "$REPO/tests/vm/cases/lifecycle/notify-listen.py" /run/notify.sock "$CASE_OUT/notify.log" &
LISTENER=$!
sleep 1
NOTIFY_SOCKET=/run/notify.sock WATCHDOG_USEC=20000000 $execstart >"$CASE_OUT/mpathd.log" 2>&1 &
PID=$!
wait_for "grep -q READY=1 $CASE_OUT/notify.log" 120
cat "$CASE_OUT/notify.log"
ready_maps=$(sed -n 's/.*READY=1 maps=\([0-9]*\).*/\1/p' "$CASE_OUT/notify.log" | head -1)
assert_eq 2 "$ready_maps" "maps present when READY=1 arrived"
for x in "${wwids[@]}"; do
    [ -e "/dev/mapper/$x" ] || fail "READY=1 came before udev made /dev/mapper/$x"
done
echo "ok: map nodes present when READY=1 arrived"

# A reader on the first map for the rest of the case.
w=${wwids[0]}
( while :; do dd if="/dev/mapper/$w" of=/dev/null bs=64k count=64 iflag=direct 2>>"$CASE_OUT/reader.err" || echo "READ ERROR" >>"$CASE_OUT/reader.err"; done ) &
READER=$!

# SIGHUP with a changed configuration: queueing on every map, kept when
# the daemon stops (queue_without_daemon yes).
sed -i 's/polling_interval 2/polling_interval 2\n\tno_path_retry queue\n\tqueue_without_daemon yes/' /etc/multipath.conf
kill -HUP "$PID"
wait_for "dmsetup table $w | grep -q queue_if_no_path" 30
grep -q RELOADING=1 "$CASE_OUT/notify.log" || fail "no RELOADING=1 around reconfigure"
echo "ok: SIGHUP applied the new configuration"

# A bad configuration is refused, the old one stays.
cp /etc/multipath.conf /tmp/good.conf
printf 'defaults {\n\tpolling_interval notanumber\n' >>/etc/multipath.conf
kill -HUP "$PID"
sleep 3
kill -0 "$PID" || fail "daemon died on a bad configuration"
grep -qi "rejected\|error" "$CASE_OUT/mpathd.log" || fail "no error logged for the bad configuration"
/usr/sbin/mpathd show config | grep -q "no_path_retry \"\?queue" || fail "running configuration lost"
dmsetup table "$w" | grep -q queue_if_no_path || fail "maps changed by a refused configuration"
echo "ok: bad configuration refused, old one kept"
cp /tmp/good.conf /etc/multipath.conf

# The watchdog is pinged from the run loop.
wait_for "grep -q WATCHDOG=1 $CASE_OUT/notify.log" 30

# SIGTERM: maps and the reader stay, and with queue_without_daemon yes the
# maps keep queueing while no daemon runs.
before=$(mp_tables)
kill -TERM "$PID"; wait "$PID" || true
grep -q STOPPING=1 "$CASE_OUT/notify.log" || fail "no STOPPING=1"
assert_eq "$before" "$(mp_tables)" "maps after SIGTERM"
dmsetup table "$w" | grep -q queue_if_no_path || fail "queue_without_daemon yes: queueing switched off at stop"
sleep 2
kill -0 "$READER" || fail "reader stopped"
# With the daemon down every path of $w fails: a read must queue, not
# fail; the restarted daemon reinstates the paths and the read completes.
mapfile -t lp < <(wwid_paths "$w")
for d in "${lp[@]}"; do path_offline "$d"; done
dd if="/dev/mapper/$w" of=/dev/null bs=4k count=1 iflag=direct 2>"$CASE_OUT/queued.err" &
QDD=$!
sleep 5
kill -0 "$QDD" 2>/dev/null || fail "with no path and no daemon a read returned at once: queueing was lost ($(cat "$CASE_OUT/queued.err"))"
for d in "${lp[@]}"; do path_online "$d"; done
echo "ok: with no daemon and no path, a read queues"

# Restart adopts without reloading, and the queued read completes.
readies=$(grep -c READY=1 "$CASE_OUT/notify.log")
NOTIFY_SOCKET=/run/notify.sock $execstart >"$CASE_OUT/mpathd-restart.log" 2>&1 &
PID=$!
wait_for "[ \$(grep -c READY=1 $CASE_OUT/notify.log) -gt $readies ]" 120
wait_for "! kill -0 $QDD 2>/dev/null" 60 || fail "the queued read never completed after the restart"
wait "$QDD" || fail "the queued read failed: $(cat "$CASE_OUT/queued.err")"
echo "ok: the restarted daemon reinstated the paths and the queued read completed"
sleep 2
if grep -E "creating map|reloading map" "$CASE_OUT/mpathd-restart.log"; then fail "restart reloaded maps"; fi
assert_eq "$before" "$(mp_tables)" "maps after restart"
kill "$READER"; wait "$READER" 2>/dev/null || true
if grep -q "READ ERROR" "$CASE_OUT/reader.err"; then cat "$CASE_OUT/reader.err"; fail "reader saw I/O errors"; fi
echo "ok: reader never saw an I/O error across reload, SIGTERM, all paths down and restart"
/usr/sbin/mpathutil list | tee "$CASE_OUT/mpathutil-list.txt"
assert_eq 2 "$(grep -c . "$CASE_OUT/mpathutil-list.txt")" "mpathutil list"

# queue_without_daemon no, SIGTERM with every path down: stopping the
# daemon switches queueing off, so the I/O queued with no path fails
# instead of hanging with nobody to bring paths back (the documented
# outcome), and what was written before is intact once a path returns.
sed -i 's/queue_without_daemon yes/queue_without_daemon no/' /etc/multipath.conf
kill -HUP "$PID"
wait_for "/usr/sbin/mpathd show config | grep -q 'queue_without_daemon \"\\?no'" 30
head -c 4096 /dev/urandom >"$CASE_OUT/before.bin"
dd if="$CASE_OUT/before.bin" of="/dev/mapper/$w" bs=4096 seek=100 count=1 oflag=direct conv=fsync,notrunc status=none ||
    fail "writing the block before the fault"
for d in "${lp[@]}"; do path_offline "$d"; done
dd if="/dev/mapper/$w" of=/dev/null bs=4k count=1 skip=7 iflag=direct 2>"$CASE_OUT/nodaemon.err" &
QDD=$!
sleep 3
kill -0 "$QDD" 2>/dev/null || fail "with every path down and the daemon running, a read did not queue"
t0=$(date +%s%3N)
kill -TERM "$PID"; wait "$PID" || true
if dmsetup table "$w" | grep -q queue_if_no_path; then fail "queue_without_daemon no: the map still queues with the daemon stopped"; fi
dmsetup table "$w" | grep -q multipath || fail "the map went with the daemon"
wait_for "! kill -0 $QDD 2>/dev/null" 20 || fail "queue_without_daemon no: the queued read still hangs after the daemon stopped"
rc=0; wait "$QDD" || rc=$?
[ "$rc" != 0 ] || fail "the queued read succeeded with every path down"
echo "queued read failed $(($(date +%s%3N) - t0)) ms after SIGTERM: $(cat "$CASE_OUT/nodaemon.err")"
for d in "${lp[@]}"; do path_online "$d"; done
# No daemon: the kernel reinstates nothing by itself; tell it, as an admin
# would (or the restarted daemon's first checks would).
for d in "${lp[@]}"; do dmsetup message "$w" 0 "reinstate_path $(dev_majmin "$d")"; done
dd if="/dev/mapper/$w" of="$CASE_OUT/after.bin" bs=4096 skip=100 count=1 iflag=direct status=none ||
    fail "reading the block back after the paths returned"
cmp -s "$CASE_OUT/before.bin" "$CASE_OUT/after.bin" || fail "the block written before the fault changed"
echo "ok: queue_without_daemon no: SIGTERM with every path down fails the queued I/O, the map stays, the data written before is intact"
kill "$LISTENER" 2>/dev/null || true
