# The benchmark's SAN, configuration, daemons and I/O rows, shared by
# bench.sh and the profile scripts that measure one of its rows alone.
# Source it after tests/vm/lib.sh with LUNS, PATHS, HOT, TRIES, IO_TRIES,
# DAEMONS, BC, RES, READER and BENCH_BIN set.

# path_grouping_policy is pinned: multipath-tools 0.9.4 has no
# detect_pgpolicy and would build failover maps where mpathd builds
# group_by_prio. The tables are compared before anything is timed.
# no_path_retry queue: the all-paths-down row measures queued I/O.
CONF='defaults {
	find_multipaths yes
	user_friendly_names no
	polling_interval 5
	path_grouping_policy group_by_prio
	no_path_retry queue
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

result() { # DAEMON METRIC VALUE
    echo "$1 $2 $3" >>"$RES"
    log "RESULT $1 $2 $3"
}

# kv KEY LINE -> the value of KEY=... in a bench_client output line
kv() {
    local w
    for w in $2; do
        case "$w" in "$1"=*) echo "${w#*=}"; return 0 ;; esac
    done
    return 1
}

# stats FILE -> "median max" of the numbers in FILE (one a line)
stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f\n", m, v[NR] }'
}

# ---------------------------------------------------------------- the SAN
# tests/vm/lib.sh's san_scsi_debug_active: hosts added one by one, the
# standby host number (host2) held by a host without targets, so every LUN
# has 2 active/optimized and 2 active/non-optimized paths and udev does not
# retry failing reads on standby paths for minutes under TCG.
SAN_DEV_MB=8
make_san() {
    local t0=$SECONDS h st
    log "SAN: $LUNS LUNs x $PATHS hosts (+$HOT hot-add LUNs later)"
    SAN_WAIT_SECS=1200 san_scsi_debug_active "$LUNS" "$PATHS" || return 1
    log "SAN ready: $(sd_devices scsi_debug | wc -l) paths in $((SECONDS - t0)) s"
    result san setup_s $((SECONDS - t0))
    for h in "${SAN_HOSTS[@]}"; do
        st=$(cat /sys/class/scsi_host/host"$h"/device/target*/*/access_state 2>/dev/null | sort | uniq -c | tr '\n' ' ')
        log "host$h access states: $st"
    done
    [ "$HOT" -gt 0 ] && warm_up_hot_add
    return 0
}

# The benchmark's multipath.conf and no wwids file: where every start begins.
fresh_config() {
    printf '%s\n' "$CONF" >/etc/multipath.conf
    mkdir -p /etc/multipath
    rm -f /etc/multipath/wwids
}

# Every path claimed once before the first turn, by a cold start of the
# first daemon that is not measured. A daemon sends a change uevent to each
# path of a new map that udev's database does not show claimed
# (DM_MULTIPATH_DEVICE_PATH=1); udev's database keeps that across turns, so
# only the first turn after the SAN was built had those 1,024 uevents to
# pay for (~290 s of udev's work under TCG), whichever daemon it was. Every
# measured turn starts from claimed paths and no wwids file, as a host's
# reboot does (udev's rules claim at coldplug from the wwids file there).
warm_up_claims() {
    local D=${DAEMONS%% *} t0=$SECONDS line
    log "warm-up: a cold start of $D claims every path (not measured)"
    fresh_config
    line=$(cold_start "$D" "$OUT/warmup") || {
        log "warm-up failed: $line"
        return 1
    }
    wait_for "daemon_idle $D" 300
    udev_settle 1200
    stop_daemon "$D" "$(cat "$OUT/warmup.pid")"
    flush_mpath_maps
    log "warm-up done: $line; until udev settled and the maps were gone $((SECONDS - t0)) s"
    result san claim_warmup_s $((SECONDS - t0))
}

# One hot add and remove with no daemon running, before any daemon, so
# every turn follows a hot add and the first turn does not pay for udev's
# first one (the order effect itself is cancelled by turns in both orders;
# bench/README.md). Its time (until udev settled) is printed below the
# table.
warm_up_hot_add() {
    local t0=$SECONDS
    log "warm-up hot add (no daemon)"
    bash -c "$(hot_add_cmd)" || return 1
    udev_settle 1200
    result san hot_add_nodaemon_s $((SECONDS - t0))
    hot_remove
}

# The LUNs a hot add brings: raise max_luns, rescan the SAN's hosts.
hot_add_cmd() { san_hot_add_script "$HOT"; }

# Undo a hot add: delete the new LUNs' devices and lower max_luns again.
hot_remove() {
    local d l
    for d in /sys/class/scsi_device/*; do
        [ -e "$d" ] || continue
        l=${d##*:}
        [ "$l" -ge "$LUNS" ] 2>/dev/null && echo 1 >"$d/device/delete"
    done
    echo "$LUNS" >"$SD_DRIVER/max_luns"
    udev_settle 600
    log "hot-added LUNs removed: $(sd_devices scsi_debug | wc -l) paths"
}

# ---------------------------------------------------------------- daemons
daemon_cmd() {
    case "$1" in
    mpathd) echo "$BENCH_BIN/mpathd -d -v2" ;;
    multipathd) echo "/sbin/multipathd -d -s -v2" ;;
    esac
}

# Start DAEMON and wait until every LUN's map is complete: bench_client's
# line ("secs=... first_map=..."); the daemon's PID in PRE.pid, its log
# in PRE.log.
cold_start() { # DAEMON PRE
    # shellcheck disable=SC2046
    "$BC" --timeout 1800 start-wait --maps "$LUNS" --paths "$PATHS" \
        --pidfile "$2.pid" --log "$2.log" -- $(daemon_cmd "$1")
}

client() { # DAEMON ARGS... -> the daemon's own client
    local d=$1
    shift
    case "$d" in
    mpathd) "$BENCH_BIN/mpathd" "$@" ;;
    multipathd) multipathd "$@" ;;
    esac
}

# Table loads (creates and reloads) the daemon has made, over all maps.
map_loads() {
    client "$1" show maps raw format "%2" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }'
}

daemon_idle() { client "$1" show daemon 2>/dev/null | grep -qE "idle|running"; }

stop_daemon() { # DAEMON PID
    log "stopping $1 ($2)"
    kill -TERM "$2" 2>/dev/null
    local i
    for i in $(seq 60); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.5
    done
    kill -9 "$2" 2>/dev/null || true
}

status_kb() { # PID FIELD -> kB
    local k v _
    while read -r k v _; do
        [ "$k" = "$2:" ] && { echo "$v"; return; }
    done <"/proc/$1/status"
}

map_of_lun() { # LUN -> WWID of its map (user_friendly_names no)
    local p
    p=$(lun_paths "$1" | head -n1)
    dev_wwid "$p"
}

# paths_of_lun_in STATE LUN -> that LUN's devices in ALUA state STATE
paths_of_lun_in() {
    local d
    for d in $(lun_paths "$2"); do
        [ "$(path_access_state "$d")" = "$1" ] && echo "$d"
    done
    return 0
}

# What a reader through a map feels (stall_reader: O_DIRECT 4 KiB reads,
# the longest gap between two completed reads). IO_TRIES each:
#  - failover: the LUN's active/optimized paths go offline under the reader;
#  - all paths down 5 s, then back: with no_path_retry queue the reads wait;
#    how long after the paths are back the reads flow again.
io_rows() { # DAEMON PREFIX
    local D=$1 pre=$2 i lun map d line down=5 a all
    : >"$pre-failover-stall.txt"
    : >"$pre-failover-errors.txt"
    : >"$pre-allpaths-resume.txt"
    : >"$pre-allpaths-errors.txt"
    for ((i = 0; i < IO_TRIES; i++)); do
        lun=$(((TRIES + IO_TRIES + i) % LUNS))
        map=$(map_of_lun "$lun")
        mapfile -t a < <(paths_of_lun_in active/optimized "$lun")
        mapfile -t all < <(lun_paths "$lun")
        [ "${#a[@]}" -ge 1 ] || continue
        "$READER" "/dev/mapper/$map" 12 >"$pre-failover-$i.txt" 2>&1 &
        sleep 3
        for d in "${a[@]}"; do echo offline >"/sys/block/$d/device/state"; done
        wait $!
        line=$(cat "$pre-failover-$i.txt")
        log "failover try $i ($map, ${a[*]} offline): $line"
        kv max_stall_ms "$line" >>"$pre-failover-stall.txt"
        kv errors "$line" >>"$pre-failover-errors.txt"
        for d in "${a[@]}"; do echo running >"/sys/block/$d/device/state"; done
        wait_for "! dmsetup status $map | grep -q ' F '" 60

        "$READER" "/dev/mapper/$map" $((down + 20)) >"$pre-allpaths-$i.txt" 2>&1 &
        sleep 3
        for d in "${all[@]}"; do echo offline >"/sys/block/$d/device/state"; done
        sleep "$down"
        for d in "${all[@]}"; do echo running >"/sys/block/$d/device/state"; done
        wait $!
        line=$(cat "$pre-allpaths-$i.txt")
        log "all paths down ${down} s try $i ($map): $line"
        awk -v s="$(kv max_stall_ms "$line")" -v d="$down" 'BEGIN { printf "%.3f\n", s / 1000 - d }' >>"$pre-allpaths-resume.txt"
        kv errors "$line" >>"$pre-allpaths-errors.txt"
        wait_for "! dmsetup status $map | grep -q ' F '" 60
    done
    read -r med max < <(stats "$pre-failover-stall.txt")
    result "$D" failover_stall_median_ms "$med"
    result "$D" failover_stall_max_ms "$max"
    result "$D" failover_read_errors "$(awk '{ n += $1 } END { print n + 0 }' "$pre-failover-errors.txt")"
    read -r med max < <(stats "$pre-allpaths-resume.txt")
    result "$D" allpaths_resume_median_s "$med"
    result "$D" allpaths_resume_max_s "$max"
    result "$D" allpaths_read_errors "$(awk '{ n += $1 } END { print n + 0 }' "$pre-allpaths-errors.txt")"
    result "$D" io_tries "$(grep -c . "$pre-failover-stall.txt")"
}
