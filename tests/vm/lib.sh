# Fixtures and helpers for guest case scripts (bash). Source it:
#   . "$REPO/tests/vm/lib.sh"
# Every function prints what it does to stdout (the case log). Functions that
# check something return non-zero on failure; with `set -e` that ends the case.
# See tests/vm/README.md for the list.

# ---------------------------------------------------------------- basics
log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [ "$1" != "$2" ]; then
        echo "assert_eq failed${3:+ ($3)}: expected '$1', got '$2'" >&2
        return 1
    fi
    echo "ok${3:+: $3} = '$2'"
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    if [ "$1" = "$2" ]; then
        echo "assert_ne failed${3:+ ($3)}: got '$2'" >&2
        return 1
    fi
    echo "ok${3:+: $3} = '$2' (not '$1')"
}

# wait_for 'SHELL CONDITION' TIMEOUT_SECONDS
# Polls the condition (eval'd) every 0.5 s until it succeeds.
wait_for() {
    local cond=$1 limit=${2:-30} start
    start=$(date +%s)
    until eval "$cond" >/dev/null 2>&1; do
        if [ $(($(date +%s) - start)) -ge "$limit" ]; then
            echo "wait_for: timed out after ${limit}s: $cond" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "waited $(($(date +%s) - start))s for: $cond"
}

udev_settle() { udevadm settle --timeout="${1:-180}"; }

# ---------------------------------------------------------------- SCSI paths
# dev_majmin DEV -> "8:16"
dev_majmin() { cat "/sys/block/${1#/dev/}/dev"; }

# dev_wwid DEV -> WWID as multipathd sees it (udev ID_SERIAL, from VPD 0x83).
dev_wwid() { udevadm info --query=property --property=ID_SERIAL --value "/dev/${1#/dev/}"; }

# dev_hctl DEV -> "H:C:T:L"
dev_hctl() { basename "$(readlink -f "/sys/block/${1#/dev/}/device")"; }

# path_access_state DEV -> ALUA state from scsi_dh_alua, e.g. active/optimized
path_access_state() { cat "/sys/block/${1#/dev/}/device/access_state" 2>/dev/null; }

# path_scsi_state DEV -> running|offline|...
path_scsi_state() { cat "/sys/block/${1#/dev/}/device/state"; }

# sd_devices MODEL -> sd names whose SCSI model matches (e.g. scsi_debug)
sd_devices() {
    local d
    for d in /sys/block/sd*; do
        [ -e "$d/device/model" ] || continue
        if [ "$(tr -d ' ' <"$d/device/model")" = "$1" ]; then
            basename "$d"
        fi
    done | sort -V
}

# wwid_paths WWID [DEV...] -> the devices (default: all sd) with that WWID
wwid_paths() {
    local wwid=$1 d
    shift
    [ $# -gt 0 ] || set -- $(ls /sys/block | grep '^sd' | sort -V)
    for d in "$@"; do
        [ "$(dev_wwid "$d")" = "$wwid" ] && echo "$d"
    done
    return 0
}

# paths_in_state STATE DEV... -> those DEVs whose access_state is STATE
paths_in_state() {
    local want=$1 d
    shift
    for d in "$@"; do
        [ "$(path_access_state "$d")" = "$want" ] && echo "$d"
    done
    return 0
}

path_offline() {
    log "path $1 -> offline"
    echo offline >"/sys/block/${1#/dev/}/device/state"
}

path_online() {
    log "path $1 -> running"
    echo running >"/sys/block/${1#/dev/}/device/state"
}

# path_delete DEV: the SCSI device goes away (as on a LUN unmap / cable pull).
path_delete() {
    log "path $1 -> delete"
    echo 1 >"/sys/block/${1#/dev/}/device/delete"
}

# scsi_rescan: scan every SCSI host for new devices, then let udev settle.
scsi_rescan() {
    local h
    log "rescanning SCSI hosts"
    for h in /sys/class/scsi_host/host*/scan; do
        echo "- - -" >"$h"
    done
    udev_settle
}

# ---------------------------------------------------------------- scsi_debug SAN
SAN_DEV_MB=${SAN_DEV_MB:-16}

# san_scsi_debug LUNS HOSTS [extra scsi_debug params...]
# Every LUN is seen through HOSTS SCSI hosts with one WWID. ALUA state per
# host is fixed by scsi_debug (host number mod 3: 0 active/optimized,
# 1 active/non-optimized, 2 standby); pick paths with paths_in_state.
san_scsi_debug() {
    local luns=$1 hosts=$2
    shift 2
    log "scsi_debug SAN: $luns LUNs x $hosts hosts $*"
    modprobe scsi_dh_alua
    modprobe scsi_debug add_host="$hosts" num_tgts=1 max_luns="$luns" \
        vpd_use_hostno=0 dev_size_mb="$SAN_DEV_MB" "$@" || return 1
    wait_for "[ \$(sd_devices scsi_debug | wc -l) -ge $((luns * hosts)) ]" 120 || return 1
    udev_settle
    san_paths | while read -r d; do
        echo "  $d $(dev_hctl "$d") $(dev_majmin "$d") $(dev_wwid "$d") $(path_access_state "$d")"
    done
}

# san_paths -> all scsi_debug sd devices
san_paths() { sd_devices scsi_debug; }

# san_wwids -> the distinct WWIDs of the scsi_debug LUNs, sorted
san_wwids() {
    local d
    for d in $(san_paths); do dev_wwid "$d"; done | sort -u
}

# lun_paths LUN -> the scsi_debug devices of LUN number LUN (H:C:T:LUN)
lun_paths() {
    local d
    for d in $(san_paths); do
        [ "$(dev_hctl "$d" | cut -d: -f4)" = "$1" ] && echo "$d"
    done
    return 0
}

san_teardown() {
    lsmod | grep -q '^scsi_debug' || return 0
    log "removing scsi_debug"
    udev_settle 30
    modprobe -r scsi_debug
}

# ---------------------------------------------------------------- peer multipathd
PEER_CONF_DEFAULT='defaults {
	user_friendly_names no
	find_multipaths no
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

# start_peer_multipathd [CONFIG_TEXT]
# Starts Debian's multipathd (the reference to compare against) in the
# foreground-as-background mode, logging to $CASE_OUT/peer-multipathd.log.
# Note: a one-line section such as `blacklist { devnode "^sr" }` is a parse
# error for it; put each brace on its own line.
start_peer_multipathd() {
    local conf=${1:-$PEER_CONF_DEFAULT}
    printf '%s\n' "$conf" >/etc/multipath.conf
    mkdir -p /etc/multipath
    log "starting peer multipathd"
    /sbin/multipathd -d -s -v3 >"${CASE_OUT:-/tmp}/peer-multipathd.log" 2>&1 &
    PEER_MULTIPATHD_PID=$!
    wait_for "multipathd show daemon | grep -q running" 60
}

stop_peer_multipathd() {
    [ -n "${PEER_MULTIPATHD_PID:-}" ] || pgrep -x multipathd >/dev/null || return 0
    log "stopping peer multipathd"
    multipathd shutdown >/dev/null 2>&1 || true
    wait_for "! pgrep -x multipathd" 20 || pkill -9 -x multipathd
    multipath -F >/dev/null 2>&1 || true
    PEER_MULTIPATHD_PID=
}

# ---------------------------------------------------------------- cleanup
# rig_cleanup: undo every fixture (run by stage 2 after each case).
rig_cleanup() {
    pkill -x mpathd 2>/dev/null
    stop_peer_multipathd
    if declare -F iscsi_teardown >/dev/null; then iscsi_teardown; fi
    dmsetup remove_all --force >/dev/null 2>&1 || true
    san_teardown
    rm -rf /etc/multipath /etc/multipath.conf
    return 0
}
