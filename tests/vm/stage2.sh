#!/bin/bash
# Stage 2 of the mpathd test rig: runs as PID 1 in the guest, on an overlay of
# the host root. Sets up the system, runs the suite's case scripts one by one
# and writes their results to the results share, then powers off.
# Usage (from the initramfs): stage2.sh OUT_DIR
# OUT_DIR/guest.env (written by tests/vm/run) names the suite, its case files
# and the paths.
set -u
OUT=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

say() { echo "rig: $*" >/dev/console; }
# Seconds since boot, without starting a process (each costs under TCG).
now() {
    local up _
    read -r up _ </proc/uptime
    echo "$up"
}
poweroff_now() {
    sync
    umount "$OUT" 2>/dev/null
    echo o >/proc/sysrq-trigger
    sleep 60
}

say "stage 2 at $(now)s"
# shellcheck source=/dev/null
. "$OUT/guest.env" || { say "cannot read $OUT/guest.env"; poweroff_now; }

# The guest must not pick up host-side multipath state or config.
rm -rf /etc/multipath /etc/multipath.conf /etc/multipath.conf.d

/lib/systemd/systemd-udevd --daemon || say "systemd-udevd failed to start"
modprobe -a dm_mod dm_multipath dm_round_robin dm_service_time dm_queue_length \
    scsi_dh_alua sd_mod sg || say "loading the device-mapper modules failed"
say "setup done at $(now)s"
echo "boot $(now)" >"$OUT/timing"

export REPO MPATHD_BIN GUEST_TESTS SUITE
: >"$OUT/results"
for c in $CASE_FILES; do
    name=${c##*/}
    name=${name%.sh}
    # A case may ask for its own time limit with a line "# rig-timeout: N".
    t=$(sed -n 's/^# rig-timeout: *\([0-9][0-9]*\).*/\1/p' "$c" | head -n1)
    t=${t:-$CASE_TIMEOUT}
    export CASE_OUT=$OUT/$name
    mkdir -p "$CASE_OUT"
    say "case $name (limit ${t}s)"
    start=$SECONDS
    (cd "$CASE_OUT" && exec timeout -k 10 "$t" bash "$c") </dev/null >"$OUT/$name.log" 2>&1
    rc=$?
    [ "$rc" = 124 ] && echo "rig: case timed out after ${t}s" >>"$OUT/$name.log"
    echo "$name $rc $((SECONDS - start))" >>"$OUT/results"
    say "case $name exit $rc"
    # Leave a clean slate for the next case.
    (
        # shellcheck source=lib.sh
        . "$REPO/tests/vm/lib.sh" && rig_cleanup
    ) >>"$OUT/$name.log" 2>&1
done
echo "end $(now)" >>"$OUT/timing"
echo done >"$OUT/done"
say "all cases done, powering off"
poweroff_now
