#!/bin/bash
# rig-timeout: 5400
# The benchmark's failover row alone, with many tries per turn and what
# the guest did around each fault: is a long stall the daemon's doing, or
# the guest's? mpathd and Debian's multipathd take turns on one SAN with
# the benchmark's configuration. Per try: the reader's stall, when it began
# relative to the fault, and, in 100 ms bins from 1 s before the fault to
# 1 s after, the daemon's CPU and the guest's busy CPU. Runs in the rig's
# guest:
#   cargo build --release --bins --example bench_client --example stall_reader
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-failover bench/guest/profile-failover.sh
# Output in tests/vm/out/profile-failover/profile-failover/: the daemons'
# logs, per try the CPU samples, and the FAILOVER lines in the log.
set -u
# shellcheck source=../../tests/vm/lib.sh
. "$REPO/tests/vm/lib.sh"
# The rig passes no host environment into the guest: edit the sizes here.
LUNS=256
FAILOVER_TRIES=12
DAEMONS="mpathd multipathd multipathd mpathd"
PATHS=4 HOT=0 TRIES=0 IO_TRIES=0
OUT=$CASE_OUT
RES=$OUT/results.txt
BENCH_BIN=$REPO/target/release
BC=$BENCH_BIN/examples/bench_client
READER=$BENCH_BIN/examples/stall_reader
[ -x "$BC" ] && [ -x "$READER" ] || fail "release build missing (see the header)"
: >"$RES"
# shellcheck source=bench-lib.sh
. "$REPO/bench/guest/bench-lib.sh"

# Every 20 ms until killed: "wall-clock s, the PID's CPU ticks, the guest's
# busy ticks, its idle ticks" (bash builtins only, so the sampler itself
# forks nothing; the read on a pipe nobody writes is the sleep).
sample_cpu() { # PID FILE
    local fd s c
    exec {fd}<> <(:)
    while :; do
        read -r -a s <"/proc/$1/stat" || break
        read -r -a c </proc/stat
        echo "$EPOCHREALTIME $((s[13] + s[14])) $((c[1] + c[2] + c[3] + c[6] + c[7])) $((c[4] + c[5]))"
        read -r -t 0.02 -u "$fd" || :
    done >"$2"
}

# 100 ms bins around the fault: daemon CPU ms, guest busy %.
around_fault() { # SAMPLES FAULT_TIME
    awk -v f="$2" '{
        b = int(($1 - f + 1) * 10); if ($1 < f - 1 || b > 19) next
        if (!(b in d0)) { d0[b] = $2; u0[b] = $3; i0[b] = $4 }
        d1[b] = $2; u1[b] = $3; i1[b] = $4
    } END {
        for (b = 0; b < 20; b++) {
            bu = u1[b] - u0[b]; id = i1[b] - i0[b]
            printf "%s%d/%d%s", (b == 10 ? "| " : ""), (d1[b] - d0[b]) * 10,
                (bu + id > 0 ? 100 * bu / (bu + id) : 0), (b < 19 ? " " : "\n")
        }
    }' "$1"
}

failover_try() { # DAEMON PID PREFIX TRY
    local D=$1 pid=$2 pre=$3 i=$4 lun map a d t0 tf line smp
    lun=$(((i * 7) % LUNS))
    map=$(map_of_lun "$lun")
    mapfile -t a < <(paths_of_lun_in active/optimized "$lun")
    [ "${#a[@]}" -ge 1 ] || { log "LUN $lun has no active/optimized path"; return 0; }
    sample_cpu "$pid" "$pre-try$i.cpu" &
    smp=$!
    t0=$EPOCHREALTIME
    "$READER" "/dev/mapper/$map" 8 >"$pre-try$i.txt" 2>&1 &
    sleep 3
    for d in "${a[@]}"; do echo offline >"/sys/block/$d/device/state"; done
    tf=$EPOCHREALTIME
    wait $!
    kill "$smp"
    wait "$smp" 2>/dev/null
    echo "reader_start=$t0 fault=$tf" >>"$pre-try$i.txt"
    line=$(cat "$pre-try$i.txt")
    kv max_stall_ms "$line" >>"$pre-failover-stall.txt"
    log "FAILOVER $D try $i ($map, ${a[*]}): $line; stall began $(awk -v t0="$t0" -v tf="$tf" -v s="$(kv stall_start_s "$line")" 'BEGIN { printf "%+.3f", t0 + s - tf }') s from the fault"
    log "  daemon CPU ms/guest busy % per 100 ms, fault at |: $(around_fault "$pre-try$i.cpu" "$tf")"
    for d in "${a[@]}"; do echo running >"/sys/block/$d/device/state"; done
    wait_for "! dmsetup status $map | grep -q ' F '" 60
}

log "profile-failover: LUNS=$LUNS tries=$FAILOVER_TRIES daemons: $DAEMONS"
make_san || fail "SAN set-up failed"
warm_up_claims || fail "claim warm-up failed"
declare -A turn=()
for D in $DAEMONS; do
    turn[$D]=$((${turn[$D]:-0} + 1))
    pre=$OUT/$D-turn${turn[$D]}
    log "======== $D, turn ${turn[$D]}"
    fresh_config
    udev_settle 600
    line=$(cold_start "$D" "$pre") || fail "$D cold start failed: $line"
    pid=$(cat "$pre.pid")
    wait_for "daemon_idle $D" 300
    udev_settle 600
    # As in the benchmark, the failovers come after minutes of steady
    # state: the checkers' intervals have grown to max_polling_interval.
    sleep 60
    : >"$pre-failover-stall.txt"
    for ((i = 0; i < FAILOVER_TRIES; i++)); do
        failover_try "$D" "$pid" "$pre" "$i"
    done
    read -r med max < <(stats "$pre-failover-stall.txt")
    log "FAILOVER $D turn ${turn[$D]}: median $med ms, max $max ms over $(grep -c . "$pre-failover-stall.txt") tries: $(tr '\n' ' ' <"$pre-failover-stall.txt")"
    stop_daemon "$D" "$pid"
    flush_mpath_maps
done
exit 0
