#!/bin/sh
# Started before udev's coldplug, so the paths it announces are taken in
# as they appear; multipath-tools' switches turn it off.
if getargbool 1 rd.multipath -d -n rd_NO_MULTIPATH && ! getarg nompath >/dev/null; then
    modprobe -q dm_multipath
    mkdir -p /run/initramfs
    /usr/sbin/mpathd -d -s </dev/null >>/run/initramfs/mpathd.log 2>&1 &
    echo $! >/run/mpathd.initramfs.pid
    need_shutdown
fi
