#!/bin/sh
# The real root's mpathd.service adopts the maps; two daemons must never
# drive them, so the initramfs' one stops before switch_root.
[ -e /run/mpathd.initramfs.pid ] || exit 0
pid=$(cat /run/mpathd.initramfs.pid)
/usr/sbin/mpathd shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do
    i=$((i + 1))
    sleep 0.1
done
kill -9 "$pid" 2>/dev/null
rm -f /run/mpathd.initramfs.pid
