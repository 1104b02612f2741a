#!/bin/bash
# SCSI commands, checkers and prioritizers (tests/guest_scsi.rs) on
# scsi_debug (1 LUN x 3 hosts: active/optimized, active/non-optimized,
# standby) and LIO through tcm_loop (1 LUN x 2 ports: active/optimized, and
# standby with the preferred bit), compared with sg3-utils and Debian's
# multipathd.
# rig-timeout: 400
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

CFG=/sys/kernel/config/target
LIO_IMG=/tmp/lio0.img
LIO_DEV=$CFG/core/fileio_0/lio0
LIO_PORTS="naa.5001405000000a01 naa.5001405000000a02"

lio_setup() {
    log "LIO tcm_loop: 1 LUN x 2 ports"
    modprobe target_core_mod
    modprobe target_core_file
    modprobe tcm_loop
    truncate -s 16M "$LIO_IMG"
    mkdir -p "$LIO_DEV"
    echo "fd_dev_name=$LIO_IMG,fd_dev_size=16777216" >"$LIO_DEV/control"
    # A unit serial, so udev gives the LUN a WWID (the kernel caches no VPD
    # pages for tcm_loop devices).
    echo "lio0-$(date +%s)" >"$LIO_DEV/wwn/vpd_unit_serial"
    echo 1 >"$LIO_DEV/enable"
    # Implicit ALUA only, so scsi_dh_alua cannot change the states.
    echo 1 >"$LIO_DEV/alua/default_tg_pt_gp/alua_access_type"
    mkdir "$LIO_DEV/alua/sb"
    echo 2 >"$LIO_DEV/alua/sb/tg_pt_gp_id"
    echo 1 >"$LIO_DEV/alua/sb/alua_access_type"
    echo 1 >"$LIO_DEV/alua/sb/preferred"
    local n=0 w d
    for w in $LIO_PORTS; do
        n=$((n + 1))
        # The nexus first: tcm_loop adds the SCSI device when the LUN is
        # linked, which fails without one.
        mkdir -p "$CFG/loopback/$w/tpgt_1"
        echo "naa.5001405000000b0$n" >"$CFG/loopback/$w/tpgt_1/nexus"
        mkdir -p "$CFG/loopback/$w/tpgt_1/lun/lun_0"
        ln -s "$LIO_DEV" "$CFG/loopback/$w/tpgt_1/lun/lun_0/lio0"
        [ $n = 2 ] && echo sb >"$CFG/loopback/$w/tpgt_1/lun/lun_0/alua_tg_pt_gp"
    done
    wait_for '[ $(lio_paths | wc -l) -ge 2 ]' 60
    udev_settle
    # Port 2 goes standby now. The tests take the expected states from
    # LIO_ACTIVE / LIO_STANDBY (port 1 has the lower SCSI host number), not
    # from scsi_dh_alua's access_state, which tcm_loop devices may lack.
    echo 2 >"$LIO_DEV/alua/sb/alua_access_state"
    LIO_ACTIVE= LIO_STANDBY=
    for d in $(lio_paths); do
        # Clear the UNIT ATTENTION the state change raised.
        sg_turs "/dev/$d" >/dev/null 2>&1 || true
        h=$(dev_hctl "$d" | cut -d: -f1)
        if [ -z "$LIO_ACTIVE" ] || [ "$h" -lt "$(dev_hctl "$LIO_ACTIVE" | cut -d: -f1)" ]; then
            LIO_STANDBY=$LIO_ACTIVE
            LIO_ACTIVE=$d
        else
            LIO_STANDBY=$d
        fi
    done
    export LIO_ACTIVE LIO_STANDBY
    echo "LIO_ACTIVE=$LIO_ACTIVE LIO_STANDBY=$LIO_STANDBY"
    udev_settle
}

lio_paths() {
    local d
    for d in $(ls /sys/block | grep '^sd'); do
        grep -q '^LIO-ORG' "/sys/block/$d/device/vendor" 2>/dev/null && echo "$d"
    done
    return 0
}

lio_teardown() {
    local w
    [ -d "$CFG/loopback" ] || return 0
    log "removing LIO tcm_loop"
    for w in $LIO_PORTS; do
        [ -d "$CFG/loopback/$w" ] || continue
        rm -f "$CFG/loopback/$w/tpgt_1/lun/lun_0/lio0"
        echo NULL >"$CFG/loopback/$w/tpgt_1/nexus" 2>/dev/null || true
        rmdir "$CFG/loopback/$w/tpgt_1/lun/lun_0" "$CFG/loopback/$w/tpgt_1" "$CFG/loopback/$w" 2>/dev/null || true
    done
    rmdir "$LIO_DEV/alua/sb" "$LIO_DEV" "$CFG/core/fileio_0" 2>/dev/null || true
    rm -f "$LIO_IMG"
}

cleanup() {
    echo 0 >/sys/bus/pseudo/drivers/scsi_debug/every_nth 2>/dev/null || true
    echo 0 >/sys/bus/pseudo/drivers/scsi_debug/opts 2>/dev/null || true
    stop_peer_multipathd || true
    lio_teardown || true
}
trap cleanup EXIT

san_scsi_debug 1 3
lio_setup
for d in $(ls /sys/block | grep '^sd'); do
    echo "  $d $(dev_hctl "$d") $(tr -d ' ' <"/sys/block/$d/device/vendor") $(path_access_state "$d") pref=$(cat "/sys/block/$d/device/preferred_path" 2>/dev/null)"
done

# The reference: Debian's multipathd view of the same paths (alua prio, tur
# checker), from its log: its `show paths` may lack the LIO
# paths (see tests/guest_scsi.rs).
# The alua prioritizer explicitly (detect_prio would pick sysfs). No
# hardware handler for LIO: the test must not depend on scsi_dh_alua
# attaching to tcm_loop devices (it does not without VPD pages).
start_peer_multipathd 'defaults {
	user_friendly_names no
	find_multipaths no
	detect_prio no
	prio alua
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
devices {
	device {
		vendor "LIO-ORG"
		product ".*"
		hardware_handler "0"
		retain_attached_hw_handler no
		detect_prio no
		prio alua
	}
}'
peer_settled() {
    local d
    for d in $(ls /sys/block | grep '^sd'); do
        grep -q "^$d: tur state = [^p]" "$CASE_OUT/peer-multipathd.log" || return 1
        grep -q "^$d: alua prio = [0-9]" "$CASE_OUT/peer-multipathd.log" || return 1
    done
}
wait_for peer_settled 90 || {
    multipathd show paths format "%d %p %T"
    exit 1
}
multipathd show paths format "%d %p %T"
multipathd show topology || true
stop_peer_multipathd
for d in $(ls /sys/block | grep '^sd'); do
    st=$(sed -n "s/^$d: tur state = //p" "$CASE_OUT/peer-multipathd.log" | grep -v pending | head -n1)
    echo "$d $st" >>"$CASE_OUT/peer-tur.txt"
    p=$(sed -n "s/^$d: alua prio = \([0-9]*\).*/\1/p" "$CASE_OUT/peer-multipathd.log" | head -n1)
    echo "$d $p" >>"$CASE_OUT/peer-prio.txt"
done
paste "$CASE_OUT/peer-tur.txt" "$CASE_OUT/peer-prio.txt"

export PEER_TUR=$CASE_OUT/peer-tur.txt PEER_PRIO=$CASE_OUT/peer-prio.txt
"$GUEST_TESTS/guest_scsi" --ignored --test-threads=1 --nocapture --skip hang_
# These make scsi_debug stop answering for a while: last, on a quiet system.
udev_settle
"$GUEST_TESTS/guest_scsi" --ignored --test-threads=1 --nocapture hang_
