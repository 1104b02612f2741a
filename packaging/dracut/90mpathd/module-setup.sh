#!/bin/bash
# dracut module (package mpathd-boot): mpathd in the initramfs, so that the
# root filesystem can live on a multipath map. Modelled on dracut's own
# 90multipath, which this replaces when mpathd is the multipath daemon.

is_mpath() {
    [ -e "/sys/dev/block/$1/dm/uuid" ] || return 1
    [[ $(cat "/sys/dev/block/$1/dm/uuid") == mpath-* ]]
}

check() {
    require_binaries mpathd || return 1
    # Host-only images take the module only when a host device is a map.
    if [[ $hostonly ]] || [[ $mount_needs ]]; then
        for_each_host_dev_and_slaves is_mpath || return 255
    fi
    return 0
}

depends() {
    echo rootfs-block dm
    return 0
}

installkernel() {
    instmods dm_multipath dm_round_robin dm_queue_length dm_service_time \
        scsi_dh_alua scsi_dh_emc scsi_dh_rdac scsi_dh_hp_sw
}

install() {
    inst_multiple mpathd
    inst_multiple -o /etc/multipath.conf /etc/mpathd.toml /etc/multipath/wwids \
        /etc/multipath/bindings /etc/multipath/prkeys "/etc/multipath/conf.d/*"
    inst_rules 60-mpathd.rules 56-mpathd-dm.rules
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/mpathd-initrd.service" "$systemdsystemunitdir/mpathd.service"
        $SYSTEMCTL -q --root "$initdir" enable mpathd.service
    else
        inst_hook pre-trigger 02 "$moddir/mpathd-start.sh"
        inst_hook cleanup 02 "$moddir/mpathd-stop.sh"
    fi
}
