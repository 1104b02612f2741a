#!/bin/bash
# The benchmark proper, run once in the guest by bench/guest/stage2.sh:
# one scsi_debug SAN, then each daemon in turn on the same devices (maps
# flushed and the wwids file cleared between them). Writes
#   $OUT/results.txt   lines "DAEMON METRIC VALUE" (read by bench/report.py)
#   $OUT/<daemon>-*    daemon logs and raw samples (<daemon>-turnN-* for a
#                      daemon's second and later turns)
# A daemon named more than once in BENCH_DAEMONS (e.g. "mpathd multipathd
# multipathd mpathd") is measured once per turn; report.py averages them.
# Parameters (environment, set by bench/run): BENCH_LUNS, BENCH_HOT_LUNS,
# BENCH_TRIES, BENCH_IO_TRIES, BENCH_STEADY_SECS, BENCH_TOPO_N, BENCH_DAEMONS,
# BENCH_BIN (release mpathd), BENCH_CLIENT (the bench_client example).
set -uo pipefail
. "$REPO/tests/vm/lib.sh"

LUNS=${BENCH_LUNS:-64}
HOT=${BENCH_HOT_LUNS:-16}
TRIES=${BENCH_TRIES:-15}
IO_TRIES=${BENCH_IO_TRIES:-5}
STEADY=${BENCH_STEADY_SECS:-60}
TOPO_N=${BENCH_TOPO_N:-200}
# One reconfigure every this many ms during the "under reconfigure" row,
# for both daemons alike (multipathd answers at once, mpathd when done).
RECONF_MS=${BENCH_RECONF_MS:-2000}
DAEMONS=${BENCH_DAEMONS:-multipathd mpathd}
PATHS=4
BC=$BENCH_CLIENT
RES=$OUT/results.txt
READER=$BENCH_BIN/examples/stall_reader
: >"$RES"
# shellcheck source=bench-lib.sh
. "$REPO/bench/guest/bench-lib.sh"

bench_daemon() { # DAEMON TURN
    local D=$1 pid line t0
    local pre=$OUT/$D
    [ "$2" -gt 1 ] && pre=$OUT/$D-turn$2
    log "======== $D, turn $2"
    # Every path running (an earlier step may have left one offline).
    local d
    for d in $(san_paths); do
        [ "$(path_scsi_state "$d")" = running ] || echo running >"/sys/block/$d/device/state"
    done
    fresh_config
    udev_settle 600

    # --- cold start
    line=$(cold_start "$D" "$pre") || {
        log "$D cold start failed: $line"
        return 1
    }
    pid=$(cat "$pre.pid")
    local t_start=$SECONDS
    result "$D" cold_start_s "$(kv secs "$line")"
    result "$D" cold_first_map_s "$(kv first_map "$line")"
    wait_for "daemon_idle $D" 300
    # From the daemon's start until udev has handled every event the start
    # caused (the maps' and any the daemon sent to its paths: those are
    # queued before the daemon is idle).
    udev_settle 600
    result "$D" cold_udev_settled_s "$(awk -v s="$(kv secs "$line")" -v t="$((SECONDS - t_start))" 'BEGIN { printf "%.1f", s + t }')"
    sleep 5
    udev_settle 600
    # The same work for both: every daemon's tables must be the first one's.
    mp_tables >"$pre-tables.txt"
    result "$D" tables_sha "$(sha256sum <"$pre-tables.txt" | cut -c1-16)"
    if [ -n "${FIRST_TABLES:-}" ] && ! cmp -s "$FIRST_TABLES" "$pre-tables.txt"; then
        log "TABLES DIFFER from $FIRST_TABLES: rows compare unlike work"
        diff "$FIRST_TABLES" "$pre-tables.txt" | head -n 20
    fi
    : "${FIRST_TABLES:=$pre-tables.txt}"

    # --- steady state: CPU and memory with every path healthy
    # Reported per 60 s of the window actually measured (ns clock), so a
    # late wake-up does not give one daemon a longer window.
    local c0 c1 hz w0 w1
    hz=$(getconf CLK_TCK)
    w0=$(date +%s%N)
    c0=$(cpu_ticks "$pid")
    sleep "$STEADY"
    c1=$(cpu_ticks "$pid")
    w1=$(date +%s%N)
    result "$D" steady_cpu_s "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v w="$((w1 - w0))" 'BEGIN { printf "%.2f", (b - a) / hz * 60e9 / w }')"
    result "$D" steady_secs "$(awk -v w="$((w1 - w0))" 'BEGIN { printf "%.2f", w / 1e9 }')"
    result "$D" rss_peak_kb "$(status_kb "$pid" VmHWM)"
    result "$D" rss_now_kb "$(status_kb "$pid" VmRSS)"
    result "$D" threads "$(status_kb "$pid" Threads)"
    result "$D" cpu_total_s "$(awk -v a="$c1" -v hz="$hz" 'BEGIN { printf "%.2f", a / hz }')"
    # Where the steady-state CPU goes (after the measured window, so the
    # sampling does not count in it).
    if [ "${BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null; then
        perf record -q -F 250 -g -p "$pid" -o "$pre-steady.perf" -- sleep 30 >/dev/null 2>&1
        perf report -q --stdio --no-children -i "$pre-steady.perf" --sort dso,sym 2>/dev/null |
            grep -v '^$' | head -n 400 >"$pre-steady-perf.txt"
        log "perf profile: $pre-steady-perf.txt"
    fi

    # --- show topology latency, idle and under reconfigure (BENCH_TOPO_N=0: skipped)
    [ "$TOPO_N" -gt 0 ] && line=$("$BC" --timeout 300 topology --n "$TOPO_N") && {
        echo "$line" >"$pre-topology-idle.txt"
        result "$D" topo_idle_median_ms "$(kv median_ms "$line")"
        result "$D" topo_idle_p99_ms "$(kv p99_ms "$line")"
        result "$D" topo_idle_n "$(kv n "$line")"
        result "$D" topo_idle_failed "$(($(kv failed "$line") + $(kv errors "$line")))"
    }
    [ "$TOPO_N" -gt 0 ] && line=$("$BC" --timeout 240 topology --reconfigure-every "$RECONF_MS" --for-secs 60) && {
        echo "$line" >"$pre-topology-reconf.txt"
        result "$D" topo_reconf_median_ms "$(kv median_ms "$line")"
        result "$D" topo_reconf_p99_ms "$(kv p99_ms "$line")"
        result "$D" topo_reconf_n "$(kv n "$line")"
        result "$D" topo_reconf_secs "$(kv secs "$line")"
        result "$D" topo_reconf_failed "$(($(kv failed "$line") + $(kv errors "$line")))"
        result "$D" topo_reconf_count "$(kv reconfigures "$line")"
        result "$D" topo_reconf_count_failed "$(kv reconfigures_failed "$line")"
    }
    wait_for "daemon_idle $D" 300
    sleep 5
    wait_for "[ \$(dmsetup ls --target multipath | grep -c .) -ge $LUNS ]" 300

    # --- reinstate latency: a failed, offline path comes back
    local i lun map dev mm
    : >"$pre-reinstate.txt"
    for ((i = 0; i < TRIES; i++)); do
        lun=$((i % LUNS))
        map=$(map_of_lun "$lun")
        mapfile -t lp < <(lun_paths "$lun")
        dev=${lp[$((i % ${#lp[@]}))]}
        mm=$(dev_majmin "$dev")
        echo offline >"/sys/block/$dev/device/state"
        dmsetup message "$map" 0 fail_path "$mm"
        if ! wait_for "client $D show paths | grep -E ' $dev ' | grep -q faulty" 60; then
            echo running >"/sys/block/$dev/device/state"
            continue
        fi
        line=$("$BC" --timeout 60 reinstate --map "$map" --dev "$dev") &&
            kv secs "$line" >>"$pre-reinstate.txt"
        log "reinstate $dev ($map): $line"
    done
    read -r med max < <(stats "$pre-reinstate.txt")
    result "$D" reinstate_median_s "$med"
    result "$D" reinstate_max_s "$max"
    result "$D" reinstate_n "$(grep -c . "$pre-reinstate.txt")"

    # --- an I/O error fails paths in dm: until the daemon shows them failed
    : >"$pre-iofail.txt"
    : >"$pre-iofail-total.txt"
    local a
    for ((i = 0; i < IO_TRIES; i++)); do
        lun=$(((TRIES + i) % LUNS))
        map=$(map_of_lun "$lun")
        mapfile -t a < <(paths_of_lun_in active/optimized "$lun")
        [ "${#a[@]}" -ge 1 ] || { log "LUN $lun has no active/optimized path"; continue; }
        for dev in "${a[@]}"; do echo offline >"/sys/block/$dev/device/state"; done
        local args=()
        for dev in "${a[@]}"; do args+=(--dev "$dev"); done
        if line=$("$BC" --timeout 60 io-fail --map "$map" "${args[@]}"); then
            kv daemon_after_dm "$line" >>"$pre-iofail.txt"
            kv secs "$line" >>"$pre-iofail-total.txt"
        fi
        log "io-fail ${a[*]} ($map): $line"
        for dev in "${a[@]}"; do echo running >"/sys/block/$dev/device/state"; done
        wait_for "! dmsetup status $map | grep -q ' F '" 60
    done
    read -r med max < <(stats "$pre-iofail.txt")
    result "$D" iofail_seen_median_s "$med"
    result "$D" iofail_seen_max_s "$max"
    read -r med max < <(stats "$pre-iofail-total.txt")
    result "$D" iofail_total_median_s "$med"

    io_rows "$D" "$pre"

    # --- hot add: HOT new LUNs on every host at once
    if [ "$HOT" -gt 0 ]; then
        wait_for "daemon_idle $D" 300
        udev_settle 600
        local hc0 loads0
        hc0=$(cpu_ticks "$pid")
        loads0=$(map_loads "$D")
        line=$("$BC" --timeout 1800 run-wait --maps $((LUNS + HOT)) --paths "$PATHS" \
            -- bash -c "$(hot_add_cmd)") && {
            result "$D" hot_add_s "$(kv secs "$line")"
            result "$D" hot_add_scan_s "$(kv cmd "$line")"
        }
        log "hot add: $line"
        # What the daemon added to the hot add: its CPU, and the table loads
        # it made (each one a dm uevent udev must process meanwhile).
        result "$D" hot_add_cpu_s "$(awk -v a="$hc0" -v b="$(cpu_ticks "$pid")" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')"
        result "$D" hot_add_map_loads $(($(map_loads "$D") - loads0))
    fi

    result "$D" cpu_all_s "$(awk -v a="$(cpu_ticks "$pid")" -v hz="$hz" 'BEGIN { printf "%.2f", a / hz }')"
    client "$D" show topology >"$pre-topology.txt" 2>&1
    stop_daemon "$D" "$pid"
    flush_mpath_maps
    [ "$HOT" -gt 0 ] && hot_remove
    return 0
}

log "bench: LUNS=$LUNS HOT=$HOT TRIES=$TRIES IO_TRIES=$IO_TRIES STEADY=$STEADY TOPO_N=$TOPO_N daemons: $DAEMONS"
make_san || fail "SAN set-up failed"
warm_up_claims || fail "claim warm-up failed"
declare -A turn=()
for d in $DAEMONS; do
    turn[$d]=$((${turn[$d]:-0} + 1))
    bench_daemon "$d" "${turn[$d]}" || log "$d: benchmark incomplete"
done
log "bench done"
