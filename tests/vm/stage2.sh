#!/bin/bash
# Stage 2 of the mpathd test rig: runs as PID 1 in the guest, on an overlay of
# the host root. Sets up the system, runs the suite's case scripts one by one
# and writes their results to the results share, then powers off.
# Usage (from the initramfs): stage2.sh OUT_DIR
# OUT_DIR/guest.env (written by tests/vm/run) names the suite and the paths.
set -u
OUT=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

say() { echo "rig: $*" >/dev/console; }
poweroff_now() {
    sync
    umount "$OUT" 2>/dev/null
    echo o >/proc/sysrq-trigger
    sleep 60
}

say "stage 2 at $(cut -d' ' -f1 /proc/uptime)s"
# shellcheck source=/dev/null
. "$OUT/guest.env" || { say "cannot read $OUT/guest.env"; poweroff_now; }

mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
modprobe configfs && mount -t configfs configfs /sys/kernel/config
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname rig-guest
ip link set lo up
mkdir -p /run/udev /run/lock /var/lock
: >/etc/machine-id 2>/dev/null
# The guest must not pick up host-side multipath state or config.
rm -rf /etc/multipath /etc/multipath.conf /etc/multipath.conf.d

/lib/systemd/systemd-udevd --daemon || say "systemd-udevd failed to start"
for m in dm_mod dm_multipath dm_round_robin dm_service_time dm_queue_length scsi_dh_alua sg sd_mod; do
    modprobe "$m" || say "modprobe $m failed"
done
say "setup done at $(cut -d' ' -f1 /proc/uptime)s"
echo "boot $(cut -d' ' -f1 /proc/uptime)" >"$OUT/timing"

export REPO MPATHD_BIN GUEST_TESTS SUITE
cases_dir=$REPO/tests/vm/cases/$SUITE
: >"$OUT/results"
for c in "$cases_dir"/[0-9]*.sh; do
    [ -f "$c" ] || continue
    name=$(basename "$c" .sh)
    if [ -n "${RIG_CASES:-}" ] && ! grep -qw -- "$name" <<<"$RIG_CASES"; then
        continue
    fi
    # A case may ask for its own time limit with a line "# rig-timeout: N".
    t=$(sed -n 's/^# rig-timeout: *\([0-9][0-9]*\).*/\1/p' "$c" | head -n1)
    t=${t:-$CASE_TIMEOUT}
    export CASE_OUT=$OUT/$name
    mkdir -p "$CASE_OUT"
    say "case $name (limit ${t}s)"
    start=$(cut -d' ' -f1 /proc/uptime)
    (cd "$CASE_OUT" && exec timeout -k 10 "$t" bash "$c") </dev/null >"$OUT/$name.log" 2>&1
    rc=$?
    end=$(cut -d' ' -f1 /proc/uptime)
    [ "$rc" = 124 ] && echo "rig: case timed out after ${t}s" >>"$OUT/$name.log"
    echo "$name $rc $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" >>"$OUT/results"
    say "case $name exit $rc"
    # Leave a clean slate for the next case.
    (
        # shellcheck source=lib.sh
        . "$REPO/tests/vm/lib.sh" && rig_cleanup
    ) >>"$OUT/$name.log" 2>&1
done
echo "end $(cut -d' ' -f1 /proc/uptime)" >>"$OUT/timing"
echo done >"$OUT/done"
say "all cases done, powering off"
poweroff_now
