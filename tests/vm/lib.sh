# Fixtures and helpers for guest case scripts (bash). Source it:
#   . "$REPO/tests/vm/lib.sh"
# Every function prints what it does to stdout (the case log). Functions that
# check something return non-zero on failure; with `set -e` that ends the case.
# See tests/vm/README.md for the list.

# ---------------------------------------------------------------- basics
# Under TCG every process start costs 0.1-0.5 s, so helpers use shell
# builtins (read, parameter expansion) where they can.
log() {
    local up _
    read -r up _ </proc/uptime
    echo "[$up] $*"
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [ "$1" != "$2" ]; then
        echo "FAIL: assert_eq${3:+ ($3)}: expected '$1', got '$2'" >&2
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
    local cond=$1 limit=${2:-30} start=$SECONDS
    until eval "$cond" >/dev/null 2>&1; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            echo "wait_for: timed out after ${limit}s: $cond" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "waited $((SECONDS - start))s for: $cond"
}

# mp_tables: every multipath map's table, sorted, with the "next path
# group" field shown as '*': the kernel reports its current group there,
# which moves when paths fail and come back without any table load.
mp_tables() {
    dmsetup table --target multipath | sort | awk '{
        i = 6 + $5; i += 1 + $(i); $(i + 1) = "*"; print }'
}

udev_settle() { udevadm settle --timeout="${1:-180}"; }

# ---------------------------------------------------------------- SCSI paths
# read_attr FILE -> first line of FILE (a sysfs attribute), no process.
read_attr() {
    local v
    read -r v <"$1" || [ -n "$v" ] || return 1
    echo "$v"
}

# dev_majmin DEV -> "8:16"
dev_majmin() { read_attr "/sys/block/${1#/dev/}/dev"; }

# dev_wwid DEV -> WWID as multipathd sees it (udev ID_SERIAL, from VPD 0x83),
# read from udev's database (cheaper than udevadm under TCG).
dev_wwid() {
    local mm line
    mm=$(dev_majmin "$1") || return 1
    [ -r "/run/udev/data/b$mm" ] || return 0
    while read -r line; do
        case "$line" in E:ID_SERIAL=*) echo "${line#E:ID_SERIAL=}" ;; esac
    done <"/run/udev/data/b$mm"
}

# dev_hctl DEV -> "H:C:T:L"
dev_hctl() {
    local p
    p=$(cd -P "/sys/block/${1#/dev/}/device" && pwd) || return 1
    echo "${p##*/}"
}

# path_access_state DEV -> ALUA state from scsi_dh_alua, e.g. active/optimized
path_access_state() { read_attr "/sys/block/${1#/dev/}/device/access_state" 2>/dev/null; }

# path_scsi_state DEV -> running|offline|...
path_scsi_state() { read_attr "/sys/block/${1#/dev/}/device/state"; }

# sd_devices MODEL -> sd names whose SCSI model matches (e.g. scsi_debug)
sd_devices() {
    local d m
    for d in /sys/block/sd*; do
        [ -e "$d/device/model" ] || continue
        read -r m <"$d/device/model"
        [ "${m// /}" = "$1" ] && echo "${d##*/}"
    done | sort -V
}

# wwid_paths WWID [DEV...] -> the devices (default: all sd) with that WWID
wwid_paths() {
    local wwid=$1 d
    shift
    if [ $# -eq 0 ]; then
        for d in /sys/block/sd*; do [ -e "$d" ] && set -- "$@" "${d##*/}"; done
    fi
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
    log "udev settled"
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
    local d h
    for d in $(san_paths); do
        h=$(dev_hctl "$d")
        [ "${h##*:}" = "$1" ] && echo "$d"
    done
    return 0
}

# ---------------------------------------------------------------- big scsi_debug SAN
# With add_host=N scsi_debug makes every third host (number mod 3 == 2) ALUA
# standby. Reads on standby paths fail, and the kernel's partition scan and
# udev's probes retry each one: under TCG that costs minutes per 64 paths.
# san_scsi_debug_active therefore loads scsi_debug with no host and adds
# hosts one at a time through the driver's add_host attribute; a host whose
# number would be standby is created with no targets (it only holds the
# number). Every LUN then has paths through HOSTS hosts, alternately
# active/optimized (host mod 3 == 0) and active/non-optimized (== 1), so
# group_by_prio gives two path groups, and no path is standby.
SD_DRIVER=/sys/bus/pseudo/drivers/scsi_debug
SAN_HOSTS=()  # host numbers that carry the LUNs (set by san_scsi_debug_active)
SAN_LUNS=0    # LUNs per host (raised by san_hot_add)
SAN_WAIT_SECS=${SAN_WAIT_SECS:-1800}

# lowest free SCSI host number: the one the next host gets
next_scsi_host_no() {
    local n=0
    while [ -e "/sys/class/scsi_host/host$n" ]; do n=$((n + 1)); done
    echo "$n"
}

# san_scsi_debug_active LUNS HOSTS [extra scsi_debug params...]
# LUNS LUNs through HOSTS hosts with one WWID each, no standby path. Waits
# for the sd devices and for udev (SAN_WAIT_SECS each).
san_scsi_debug_active() {
    local luns=$1 hosts=$2 h
    shift 2
    log "scsi_debug SAN (no standby host): $luns LUNs x $hosts hosts $*"
    SAN_HOSTS=()
    SAN_LUNS=$luns
    modprobe scsi_dh_alua
    modprobe scsi_debug add_host=0 num_tgts=1 max_luns="$luns" \
        vpd_use_hostno=0 dev_size_mb="$SAN_DEV_MB" "$@" || return 1
    # A new host's scan runs asynchronously by default and reads num_tgts
    # when it runs, not when the host was added (a write to num_tgts updates
    # every host): the placeholder could get its targets after all. With
    # scsi_mod's scan=sync, each add_host returns after its host's scan.
    local scan_mode
    scan_mode=$(read_attr /sys/module/scsi_mod/parameters/scan)
    echo sync >/sys/module/scsi_mod/parameters/scan
    while [ "${#SAN_HOSTS[@]}" -lt "$hosts" ]; do
        h=$(next_scsi_host_no)
        if [ $((h % 3)) = 2 ]; then
            echo 0 >"$SD_DRIVER/num_tgts"
            echo 1 >"$SD_DRIVER/add_host"
            echo 1 >"$SD_DRIVER/num_tgts"
            log "host$h (a standby number) created without targets"
        else
            echo 1 >"$SD_DRIVER/add_host"
            SAN_HOSTS+=("$h")
            log "host$h added"
        fi
    done
    echo "$scan_mode" >/sys/module/scsi_mod/parameters/scan
    wait_for "[ \$(sd_devices scsi_debug | wc -l) -ge $((luns * hosts)) ]" "$SAN_WAIT_SECS" || return 1
    log "$((luns * hosts)) sd devices; waiting for udev"
    udev_settle "$SAN_WAIT_SECS" || return 1
    # Exactly the expected devices: none on a placeholder host (never scan
    # those again: that would bring their LUNs).
    h=$(sd_devices scsi_debug | wc -l)
    if [ "$h" != $((luns * hosts)) ]; then
        echo "san_scsi_debug_active: $h sd devices, expected $((luns * hosts))" >&2
        return 1
    fi
    log "udev settled"
}

# san_hot_add_script N -> shell commands that bring N more LUNs to every
# SAN host (raise max_luns, rescan the hosts that carry LUNs, not the
# placeholders). For callers that time the commands themselves.
san_hot_add_script() {
    local h s="echo $((SAN_LUNS + $1)) >$SD_DRIVER/max_luns"
    for h in "${SAN_HOSTS[@]}"; do
        s="$s; echo '- - -' >/sys/class/scsi_host/host$h/scan"
    done
    echo "$s"
}

# san_hot_add N: N more LUNs through every SAN host; does not wait for udev.
# scsi_debug allows at most 256 LUNs per target.
san_hot_add() {
    log "hot add: $1 LUNs x ${#SAN_HOSTS[@]} hosts (LUNs $SAN_LUNS-$((SAN_LUNS + $1 - 1)))"
    eval "$(san_hot_add_script "$1")" || return 1
    SAN_LUNS=$((SAN_LUNS + $1))
}

san_teardown() {
    [ -d /sys/module/scsi_debug ] || return 0
    log "removing scsi_debug"
    udev_settle 30
    modprobe -r scsi_debug
}

# ---------------------------------------------------------------- iSCSI SAN
# The layout of seed 001 (XenServer iSCSI multipathing): one LIO target whose
# two portals sit on two private subnets, each reached through its own link.
# The target lives in network namespace $ISCSI_NS; link N is the veth pair
# iniN (guest side) / tgtN (target side) on subnet 192.168.20(N+1).0/24.
# Each portal is its own target portal group (tpgt_1, tpgt_2), so each path
# has its own SCSI target port and ALUA group (ctl_a, ctl_b), like a
# two-controller array. ALUA is implicit only (alua_access_type=1) so the
# kernel's scsi_dh_alua cannot override the states a test sets.
ISCSI_NS=rigtgt
ISCSI_IQN=iqn.2003-01.org.linux-iscsi.rig:target
ISCSI_INITIATOR=iqn.2003-01.org.linux-iscsi.rig:initiator
ISCSI_DIR=/run/rig-iscsi
LIO=/sys/kernel/config/target
ISCSI_GROUPS=(a b) # ALUA group of link 0 and link 1: ctl_a, ctl_b

# ISCSI_LAYOUT (set before iscsi_san) shapes the initiator's network:
#   two-subnets  seed 001's layout above (the default);
#   one-link     both portals on one subnet, reached through ini0 alone;
#   bond         ini0 and ini1 enslaved to bond rigbond0 (active-backup),
#                which holds the one initiator address; both portals on
#                one subnet behind a bridge in the target's namespace.
ISCSI_LAYOUT=${ISCSI_LAYOUT:-two-subnets}

iscsi_portal_ip() {
    if [ "$ISCSI_LAYOUT" = two-subnets ]; then
        echo "192.168.20$(($1 + 1)).2"
    else
        echo "192.168.201.$(($1 + 2))"
    fi
}

# iscsi_paths -> sd devices reached through an iSCSI session
iscsi_paths() {
    local d
    for d in /sys/block/sd*; do
        [ -e "$d" ] || continue
        case "$(cd -P "$d" && pwd)" in */session*) echo "${d##*/}" ;; esac
    done | sort -V
}

# iscsi_path_link DEV -> link number (0 or 1) the path goes through
iscsi_path_link() {
    local p sess conn f
    p=$(cd -P "/sys/block/${1#/dev/}" && pwd) || return 1
    sess=${p#*/session}
    sess=session${sess%%/*}
    for f in /sys/class/iscsi_session/"$sess"/device/connection*/iscsi_connection/connection*/persistent_address; do
        [ -r "$f" ] && conn=$(read_attr "$f")
    done
    case "${conn:-}" in
    "$(iscsi_portal_ip 0)") echo 0 ;;
    "$(iscsi_portal_ip 1)") echo 1 ;;
    *) echo "iscsi_path_link: no link for $1 (portal '$conn')" >&2; return 1 ;;
    esac
}

# iscsi_pair: after iscsi_san 1, the two paths of the LUN by link: sets
# P0 and P1 (kernel names), W (the WWID) and MM0, MM1 (MAJ:MIN).
iscsi_pair() {
    local d
    mapfile -t ISCSI_PAIR < <(iscsi_paths)
    assert_eq 2 "${#ISCSI_PAIR[@]}" "iSCSI paths" || return 1
    for d in "${ISCSI_PAIR[@]}"; do
        case "$(iscsi_path_link "$d")" in 0) P0=$d ;; 1) P1=$d ;; esac
    done
    W=$(dev_wwid "$P0")
    MM0=$(dev_majmin "$P0")
    MM1=$(dev_majmin "$P1")
}

# iscsi_links: the initiator's links to the target namespace, as
# ISCSI_LAYOUT says. One `ip -batch` per namespace: every process start
# costs under TCG.
iscsi_links() {
    case "$ISCSI_LAYOUT" in
    two-subnets)
        ip -batch - <<IP || return 1
link add ini0 type veth peer name tgt0 netns $ISCSI_NS
link add ini1 type veth peer name tgt1 netns $ISCSI_NS
addr add 192.168.201.1/24 dev ini0
addr add 192.168.202.1/24 dev ini1
link set ini0 up
link set ini1 up
IP
        ip -n "$ISCSI_NS" -batch - <<IP || return 1
link set lo up
addr add $(iscsi_portal_ip 0)/24 dev tgt0
addr add $(iscsi_portal_ip 1)/24 dev tgt1
link set tgt0 up
link set tgt1 up
IP
        ;;
    one-link)
        ip -batch - <<IP || return 1
link add ini0 type veth peer name tgt0 netns $ISCSI_NS
addr add 192.168.201.1/24 dev ini0
link set ini0 up
IP
        ip -n "$ISCSI_NS" -batch - <<IP || return 1
link set lo up
addr add $(iscsi_portal_ip 0)/24 dev tgt0
addr add $(iscsi_portal_ip 1)/24 dev tgt0
link set tgt0 up
IP
        ;;
    bond)
        modprobe bonding max_bonds=0 || return 1
        ip -batch - <<IP || return 1
link add rigbond0 type bond mode active-backup miimon 100
link add ini0 type veth peer name tgt0 netns $ISCSI_NS
link add ini1 type veth peer name tgt1 netns $ISCSI_NS
link set ini0 master rigbond0
link set ini1 master rigbond0
addr add 192.168.201.1/24 dev rigbond0
link set rigbond0 up
IP
        ip -n "$ISCSI_NS" -batch - <<IP || return 1
link set lo up
link add br0 type bridge
link set tgt0 master br0
link set tgt1 master br0
addr add $(iscsi_portal_ip 0)/24 dev br0
addr add $(iscsi_portal_ip 1)/24 dev br0
link set tgt0 up
link set tgt1 up
link set br0 up
IP
        # The bond passes traffic once it has chosen an active slave.
        wait_for "[ -n \"\$(cat /sys/class/net/rigbond0/bonding/active_slave)\" ] && [ \"\$(cat /sys/class/net/rigbond0/carrier)\" = 1 ]" 30 ||
            return 1
        ;;
    *) echo "iscsi_links: unknown ISCSI_LAYOUT '$ISCSI_LAYOUT'" >&2; return 1 ;;
    esac
}

# iscsi_diag IP: what the initiator side and the target namespace look
# like when IP cannot be reached (for a fixture that did not come up).
iscsi_diag() {
    echo "--- iSCSI fixture diagnostics ($ISCSI_LAYOUT, portal $1)"
    ip -br addr
    ip neigh
    ip -n "$ISCSI_NS" -br addr
    [ -e /proc/net/bonding/rigbond0 ] && grep -E 'Slave|Status|Active' /proc/net/bonding/rigbond0
    ip netns exec "$ISCSI_NS" bridge link 2>&1
    ip netns exec "$ISCSI_NS" ss -ltn 2>/dev/null | grep 3260
    echo "---"
}

# iscsi_san [LUNS] [SIZE_MB] [fast|default]: target, two links, login on
# both portals; `default` leaves open-iscsi's own timeouts (120 s replacement).
iscsi_san() {
    local luns=${1:-1} mb=${2:-32} timeouts=${3:-fast} n l tpg ip
    log "iSCSI SAN: $luns LUNs x 2 portals, $timeouts initiator timeouts"
    modprobe -a target_core_mod target_core_file iscsi_target_mod iscsi_tcp || return 1
    mkdir -p "$ISCSI_DIR"
    # LIO writes its persistent-reservation state under db_root on every PR
    # OUT (and fails the command when it cannot): somewhere writable. Only
    # settable while no device exists.
    mkdir -p "$ISCSI_DIR/target/pr"
    [ "$(cat "$LIO/dbroot" 2>/dev/null)" = "$ISCSI_DIR/target" ] ||
        echo "$ISCSI_DIR/target" >"$LIO/dbroot" 2>/dev/null || log "LIO dbroot not set (PR OUT will fail)"
    ip netns add "$ISCSI_NS" || return 1
    iscsi_links || return 1

    # Backstores, each with two ALUA groups.
    for ((l = 0; l < luns; l++)); do
        local dev=$LIO/core/fileio_0/lun$l
        mkdir -p "$dev" "$dev/alua/ctl_a" "$dev/alua/ctl_b" || return 1
        echo "fd_dev_name=$ISCSI_DIR/lun$l.img,fd_dev_size=$((mb * 1024 * 1024)),fd_buffered_io=1" >"$dev/control"
        # LIO derives the NAA WWID from the serial's hex digits.
        printf 'c0ffee%010x\n' "$l" >"$dev/wwn/vpd_unit_serial"
        echo 1 >"$dev/enable" || return 1
        for g in 1 2; do
            local gp=$dev/alua/ctl_${ISCSI_GROUPS[g - 1]}
            echo "$g" >"$gp/tg_pt_gp_id"
            echo 1 >"$gp/alua_access_type"
            echo 0 >"$gp/alua_access_state"
        done
    done

    # Target: one portal group per link; every LUN through both.
    mkdir -p "$LIO/iscsi/$ISCSI_IQN" || return 1
    for n in 0 1; do
        tpg=$LIO/iscsi/$ISCSI_IQN/tpgt_$((n + 1))
        mkdir "$tpg"
        for ((l = 0; l < luns; l++)); do
            mkdir "$tpg/lun/lun_$l"
            ln -s "$LIO/core/fileio_0/lun$l" "$tpg/lun/lun_$l/backstore"
            echo "ctl_${ISCSI_GROUPS[n]}" >"$tpg/lun/lun_$l/alua_tg_pt_gp"
        done
        echo 0 >"$tpg/attrib/authentication"
        echo 1 >"$tpg/attrib/generate_node_acls"
        echo 1 >"$tpg/attrib/cache_dynamic_acls"
        echo 0 >"$tpg/attrib/demo_mode_write_protect"
        # The portal's socket belongs to the namespace of whoever creates it.
        ip=$(iscsi_portal_ip $n)
        nsenter --net="/run/netns/$ISCSI_NS" mkdir "$tpg/np/$ip:3260" || return 1
        echo 1 >"$tpg/enable"
    done

    # Initiator: short timeouts (a cut link fails the path in ~5 s whatever
    # the daemon does), or open-iscsi's defaults (replacement_timeout 120 s,
    # noop 5/5 s), where only the daemon's recovery_tmo makes it fail fast.
    mkdir -p /etc/iscsi /run/lock/iscsi
    rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets /etc/iscsi/ifaces
    echo "InitiatorName=$ISCSI_INITIATOR" >/etc/iscsi/initiatorname.iscsi
    if [ "$timeouts" = default ]; then
        echo "node.startup = manual" >/etc/iscsi/iscsid.conf
    else
        cat >/etc/iscsi/iscsid.conf <<'CONF'
node.startup = manual
node.session.timeo.replacement_timeout = 5
node.conn[0].timeo.login_timeout = 5
node.conn[0].timeo.logout_timeout = 5
node.conn[0].timeo.noop_out_interval = 2
node.conn[0].timeo.noop_out_timeout = 2
node.session.initial_login_retry_max = 2
node.session.err_timeo.abort_timeout = 5
node.session.err_timeo.lu_reset_timeout = 5
node.session.err_timeo.tgt_reset_timeout = 5
CONF
    fi
    iscsid || return 1
    log "target ready, iscsid started"
    # A link just brought up may not pass traffic yet (ARP, a bond's slave
    # selection): discovery is retried for a while.
    for n in 0 1; do
        ip=$(iscsi_portal_ip $n)
        wait_for "iscsiadm -m discovery -t sendtargets -p $ip" 60 || { iscsi_diag "$ip"; return 1; }
    done
    for n in 0 1; do
        iscsiadm -m node -T "$ISCSI_IQN" -p "$(iscsi_portal_ip $n):3260" --login || return 1
    done
    log "logged in"
    wait_for "[ \$(iscsi_paths | wc -l) -ge $((luns * 2)) ]" 60 || return 1
    udev_settle
    log "udev settled"
    for d in $(iscsi_paths); do
        echo "  $d $(dev_hctl "$d") $(dev_majmin "$d") link $(iscsi_path_link "$d") $(dev_wwid "$d") $(path_access_state "$d")"
    done
}

# iscsi_lun_image L [SIZE_MB] -> path of LUN L's backing file, made (zeroed)
# if missing: write a partition table or an LVM PV into it (through a loop
# device) before iscsi_hot_add_lun exports it.
iscsi_lun_image() {
    local f=$ISCSI_DIR/lun$1.img
    [ -e "$f" ] || truncate -s "${2:-32}M" "$f" || return 1
    echo "$f"
}

# iscsi_hot_add_lun L [SIZE_MB]: export LUN L through both portals of a
# running iscsi_san and rescan the sessions (two new paths, one WWID).
iscsi_hot_add_lun() {
    local l=$1 mb=${2:-32} dev n g tpg img
    img=$(iscsi_lun_image "$l" "$mb") || return 1
    dev=$LIO/core/fileio_0/lun$l
    mkdir -p "$dev" "$dev/alua/ctl_a" "$dev/alua/ctl_b" || return 1
    echo "fd_dev_name=$img,fd_dev_size=$(stat -c %s "$img"),fd_buffered_io=1" >"$dev/control"
    printf 'c0ffee%010x\n' "$l" >"$dev/wwn/vpd_unit_serial"
    echo 1 >"$dev/enable" || return 1
    for g in 1 2; do
        echo "$g" >"$dev/alua/ctl_${ISCSI_GROUPS[g - 1]}/tg_pt_gp_id"
        echo 1 >"$dev/alua/ctl_${ISCSI_GROUPS[g - 1]}/alua_access_type"
    done
    for n in 0 1; do
        tpg=$LIO/iscsi/$ISCSI_IQN/tpgt_$((n + 1))
        mkdir "$tpg/lun/lun_$l" || return 1
        ln -s "$dev" "$tpg/lun/lun_$l/backstore"
        echo "ctl_${ISCSI_GROUPS[n]}" >"$tpg/lun/lun_$l/alua_tg_pt_gp"
    done
    log "LUN $l exported on both portals; rescanning the sessions"
    iscsiadm -m session --rescan >/dev/null || return 1
}

# iscsi_link_down N / iscsi_link_up N: cut or restore link N (0 or 1).
iscsi_link_down() {
    log "iSCSI link $1 down"
    ip link set "ini$1" down
}

iscsi_link_up() {
    log "iSCSI link $1 up"
    ip link set "ini$1" up
}

# iscsi_set_alua GROUP STATE: GROUP is 0/a (link 0's port) or 1/b; STATE is
# ao|an|standby|unavailable|offline or the SPC number. Applies to every LUN.
iscsi_set_alua() {
    local g=$1 st=$2 dev
    case "$g" in 0 | a | ctl_a) g=ctl_a ;; 1 | b | ctl_b) g=ctl_b ;; *) echo "iscsi_set_alua: bad group $g" >&2; return 1 ;; esac
    case "$st" in
    ao | active/optimized) st=0 ;;
    an | active/non-optimized) st=1 ;;
    standby) st=2 ;;
    unavailable) st=3 ;;
    offline) st=14 ;;
    [0-9]*) ;;
    *) echo "iscsi_set_alua: bad state $st" >&2; return 1 ;;
    esac
    log "ALUA group $g -> state $st"
    for dev in "$LIO"/core/fileio_0/lun*; do
        echo "$st" >"$dev/alua/$g/alua_access_state" || return 1
    done
}

iscsi_teardown() {
    local tpg lun np dev g
    [ -d "$LIO/iscsi/$ISCSI_IQN" ] || [ -e "/run/netns/$ISCSI_NS" ] || running iscsid || return 0
    log "tearing down the iSCSI SAN"
    # Nothing to log out of or delete is not an error here (iscsiadm says
    # so with exit 21, which would end a caller running under set -e).
    iscsiadm -m node --logoutall=all >/dev/null 2>&1 || true
    iscsiadm -m node -o delete >/dev/null 2>&1 || true
    iscsiadm -k 0 >/dev/null 2>&1 || true
    for tpg in "$LIO/iscsi/$ISCSI_IQN"/tpgt_*; do
        [ -d "$tpg" ] || continue
        echo 0 >"$tpg/enable" 2>/dev/null
        for np in "$tpg"/np/*; do [ -d "$np" ] && rmdir "$np"; done
        for lun in "$tpg"/lun/lun_*; do
            [ -d "$lun" ] || continue
            rm -f "$lun/backstore"
            rmdir "$lun"
        done
        rmdir "$tpg"
    done
    [ -d "$LIO/iscsi/$ISCSI_IQN" ] && rmdir "$LIO/iscsi/$ISCSI_IQN"
    for dev in "$LIO"/core/fileio_0/lun*; do
        [ -d "$dev" ] || continue
        for g in "$dev"/alua/ctl_*; do [ -d "$g" ] && rmdir "$g"; done
        rmdir "$dev"
    done
    [ -d "$LIO/core/fileio_0" ] && rmdir "$LIO/core/fileio_0"
    # (ini1 and rigbond0 exist in some layouts only.)
    ip link del ini0 2>/dev/null || true
    ip link del ini1 2>/dev/null || true
    ip link del rigbond0 2>/dev/null || true
    ip netns del "$ISCSI_NS" 2>/dev/null || true
    rm -rf "$ISCSI_DIR"
    return 0
}

# ---------------------------------------------------------------- LIO loopback
# loop_shared_host [SIZE_MB]: one LUN seen twice through one SCSI host.
# LIO's loopback fabric (tcm_loop) makes one SCSI host per WWN and one SCSI
# target per portal group, so two portal groups exporting one backstore are
# two paths with one WWID that share an HBA. (scsi_debug cannot show this:
# its WWIDs include the target number, so one host never carries two paths
# of one LUN.) Sets LOOP_PATHS.
LOOP_DIR=/run/rig-loop
LOOP_WWN=naa.50014050000000aa
LOOP_DEV=$LIO/core/fileio_9/loop0
loop_shared_host() {
    local mb=${1:-16} t tpg
    log "loopback SAN: one LUN, two portal groups, one SCSI host"
    modprobe -a target_core_mod target_core_file tcm_loop || return 1
    mkdir -p "$LOOP_DIR" "$LOOP_DEV" || return 1
    echo "fd_dev_name=$LOOP_DIR/lun.img,fd_dev_size=$((mb * 1024 * 1024)),fd_buffered_io=1" >"$LOOP_DEV/control"
    echo 0ddba11000 >"$LOOP_DEV/wwn/vpd_unit_serial"
    echo 1 >"$LOOP_DEV/enable" || return 1
    for t in 1 2; do
        tpg=$LIO/loopback/$LOOP_WWN/tpgt_$t
        mkdir -p "$tpg" || return 1
        # The I_T nexus first: a LUN is scanned as soon as it is linked.
        echo "naa.50014050000000b$t" >"$tpg/nexus" || return 1
        mkdir "$tpg/lun/lun_0" || return 1
        ln -s "$LOOP_DEV" "$tpg/lun/lun_0/backstore" || return 1
    done
    wait_for "[ \$(sd_devices FILEIO | wc -l) -ge 2 ]" 60 || return 1
    udev_settle
    mapfile -t LOOP_PATHS < <(sd_devices FILEIO)
    for t in "${LOOP_PATHS[@]}"; do echo "  $t $(dev_hctl "$t") $(dev_wwid "$t")"; done
}

loop_teardown() {
    local tpg
    [ -d "$LIO/loopback/$LOOP_WWN" ] || [ -d "$LOOP_DEV" ] || return 0
    log "tearing down the loopback SAN"
    for tpg in "$LIO/loopback/$LOOP_WWN"/tpgt_*; do
        [ -d "$tpg" ] || continue
        rm -f "$tpg/lun/lun_0/backstore"
        [ -d "$tpg/lun/lun_0" ] && rmdir "$tpg/lun/lun_0"
        echo NULL >"$tpg/nexus" 2>/dev/null || true
        rmdir "$tpg" || true
    done
    [ -d "$LIO/loopback/$LOOP_WWN" ] && rmdir "$LIO/loopback/$LOOP_WWN"
    [ -d "$LOOP_DEV" ] && rmdir "$LOOP_DEV"
    [ -d "$LIO/core/fileio_9" ] && rmdir "$LIO/core/fileio_9"
    rm -rf "$LOOP_DIR"
    return 0
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
# foreground-as-background mode, logging to $CASE_OUT/peer-multipathd.log
# (verbosity PEER_VERBOSITY, default 3).
# Note: a one-line section such as `blacklist { devnode "^sr" }` is a parse
# error for it; put each brace on its own line.
start_peer_multipathd() {
    local conf=${1:-$PEER_CONF_DEFAULT}
    printf '%s\n' "$conf" >/etc/multipath.conf
    mkdir -p /etc/multipath
    log "starting peer multipathd"
    /sbin/multipathd -d -s -v"${PEER_VERBOSITY:-3}" >"${CASE_OUT:-/tmp}/peer-multipathd.log" 2>&1 &
    PEER_MULTIPATHD_PID=$!
    wait_for "multipathd show daemon | grep -Eq 'idle|running'" 180
}

stop_peer_multipathd() {
    [ -n "${PEER_MULTIPATHD_PID:-}" ] || running multipathd || return 0
    log "stopping peer multipathd"
    multipathd shutdown >/dev/null 2>&1 || true
    wait_for "! running multipathd" 20 || pkill -9 -x multipathd
    multipath -F >/dev/null 2>&1 || true
    PEER_MULTIPATHD_PID=
}

# map_active_paths MAP -> how many of MAP's paths the kernel's status marks
# active (A); 0 when the map is missing.
map_active_paths() {
    dmsetup status "$1" 2>/dev/null | awk '{ n = 0; for (i = 1; i < NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/ && $(i + 1) == "A") n++; print n + 0 }'
}

# mpath_map_count -> how many dm multipath maps exist. (`dmsetup ls` prints
# "No devices found" when there is no dm device at all: never count its lines.)
mpath_map_count() {
    dmsetup table --target multipath 2>/dev/null | awk '$4 == "multipath" { n++ } END { print n + 0 }'
}

# flush_mpath_maps: remove every multipath map (a few tries: udev may hold
# one open a moment) and the wwids file, then let udev settle.
flush_mpath_maps() {
    local i
    for i in 1 2 3 4 5; do
        multipath -F >/dev/null 2>&1 || true
        dmsetup remove_all --force >/dev/null 2>&1 || true
        udev_settle 600
        [ "$(mpath_map_count)" = 0 ] && break
        sleep 2
    done
    rm -f /etc/multipath/wwids
    udev_settle 600
    log "maps left: $(mpath_map_count)"
}

# cpu_ticks PID -> its utime+stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat; the daemons' comm has no blanks).
cpu_ticks() {
    local f
    read -r -a f <"/proc/$1/stat"
    echo $((f[13] + f[14]))
}

# ---------------------------------------------------------------- cleanup
# running NAME: is a process with this exact name alive? (no process start)
running() {
    local f c
    for f in /proc/[0-9]*/comm; do
        # (stderr first: the process may be gone before we open its comm)
        read -r c 2>/dev/null <"$f" && [ "$c" = "$1" ] && return 0
    done
    return 1
}

# rig_cleanup: undo every fixture (run by stage 2 after each case). Checks
# with builtins first, since starting tools costs under TCG.
rig_cleanup() {
    if running mpathd; then pkill -x mpathd; fi
    if running multipathd; then stop_peer_multipathd; fi
    iscsi_teardown
    loop_teardown
    local dm
    for dm in /sys/block/dm-*; do
        [ -e "$dm" ] && { dmsetup remove_all --force >/dev/null 2>&1; break; }
    done
    san_teardown
    [ -e /etc/multipath ] || [ -e /etc/multipath.conf ] && rm -rf /etc/multipath /etc/multipath.conf
    return 0
}
