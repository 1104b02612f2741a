#!/bin/bash
# Stage 2 of the benchmark guest (PID 1), booted by bench/run through the
# rig's initramfs (tests/vm/mkinitramfs). Same set-up as the rig's own stage 2
# (tests/vm/stage2.sh) but runs bench/guest/bench.sh once instead of a suite,
# so the benchmark never runs as part of `tests/vm/run` with no arguments.
# Usage (from the initramfs): stage2.sh OUT_DIR; OUT_DIR/guest.env has the
# parameters written by bench/run.
set -u
OUT=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

say() { echo "bench: $*" >/dev/console; }
poweroff_now() {
    sync
    umount "$OUT" 2>/dev/null
    echo o >/proc/sysrq-trigger
    sleep 60
}

# shellcheck source=/dev/null
. "$OUT/guest.env" || { say "cannot read $OUT/guest.env"; poweroff_now; }
rm -rf /etc/multipath /etc/multipath.conf /etc/multipath.conf.d
/lib/systemd/systemd-udevd --daemon || say "systemd-udevd failed to start"
modprobe -a dm_mod dm_multipath dm_round_robin dm_service_time dm_queue_length \
    scsi_dh_alua sd_mod sg || say "loading the device-mapper modules failed"

export REPO OUT BENCH_BIN BENCH_CLIENT BENCH_LUNS BENCH_HOT_LUNS BENCH_TRIES \
    BENCH_IO_TRIES BENCH_STEADY_SECS BENCH_TOPO_N BENCH_RECONF_MS BENCH_DAEMONS BENCH_PERF
export CASE_OUT=$OUT
say "bench start"
timeout -k 10 "$BENCH_GUEST_TIMEOUT" bash "$REPO/bench/guest/bench.sh" </dev/null >"$OUT/bench.log" 2>&1
echo "$?" >"$OUT/rc"
say "bench exit $(cat "$OUT/rc")"
echo done >"$OUT/done"
poweroff_now
