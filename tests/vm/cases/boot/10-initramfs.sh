#!/bin/bash
# rig-timeout: 900
# Boot from SAN, part 1 (initramfs-tools), done in the guest as an admin would: install
# mpathd and mpathd-boot (whose postinst rebuilds the initramfs with the
# mpathd hook), with the root LUN's WWID in the wwids file. Leaves for part
# 2 (20-san-root.host, run on the host after this guest ends) the
# initramfs, and a root filesystem image whose /sbin/init checks, once
# booted, that the root is on a map (see san-init).
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

deb=$(ls "$REPO"/target/debian/mpathd_*.deb 2>/dev/null | head -1)
boot=$(ls "$REPO"/target/debian/mpathd-boot_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] && [ -n "$boot" ] || fail "no mpathd/mpathd-boot .deb under target/debian (tests/run-all builds them)"
kver=$(uname -r)
. "$REPO/tests/vm/cases/boot/san-conf.sh"
# The root filesystem's UUID, so the kernel command line can say root=UUID=.
fs_uuid=4d9a6b0e-5a1f-4c55-9d53-6a0c2d1e7f01

# Quick to build under TCG: the modules a virtio-scsi root needs, not most.
mkdir -p /etc/initramfs-tools/conf.d
echo "MODULES=list" >/etc/initramfs-tools/conf.d/rig.conf
printf '%s\n' virtio_pci virtio_scsi sd_mod ext4 >>/etc/initramfs-tools/modules
write_san_config
# Fault injection, the rig's own (not part of mpathd-boot): before mpathd
# starts, the disk behind the HBA named by rig_offline_hba= goes offline.
install -D -m755 "$REPO/tests/vm/cases/boot/rig-offline-path" \
    /etc/initramfs-tools/scripts/init-premount/rig-offline-path

log "installing $deb and $boot"
dpkg -i --no-triggers "$deb" >/dev/null
dpkg -i "$boot" | tail -n 3
img=/boot/initrd.img-$kver
[ -s "$img" ] || fail "mpathd-boot's postinst left no $img"
list=$(lsinitramfs "$img")
for f in usr/sbin/mpathd etc/multipath.conf etc/multipath/wwids lib/udev/rules.d/60-mpathd.rules \
    scripts/local-top/mpathd scripts/local-bottom/mpathd dm-multipath.ko; do
    grep -q "$f" <<<"$list" || fail "the initramfs has no $f"
    echo "ok: initramfs holds $f"
done
cp "$img" "$CASE_OUT/initrd.img"

# The SAN root: busybox, mpathd and dmsetup with their libraries, the same
# configuration, and the checking init.
root=$(mktemp -d)
mkdir -p "$root"/{bin,sbin,usr/sbin,etc/multipath,proc,sys,dev,run,tmp}
cp /bin/busybox "$root/bin/busybox"
for b in /usr/sbin/mpathd /sbin/dmsetup; do
    cp "$b" "$root/usr/sbin/"
    ldd "$b" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }' | while read -r l; do
        [ -e "$l" ] && install -D "$l" "$root$l"
    done
done
cp /etc/multipath.conf "$root/etc/"
cp /etc/multipath/wwids "$root/etc/multipath/"
install -m755 "$REPO/tests/vm/cases/boot/san-init" "$root/sbin/init"
echo "$wwid" >"$root/etc/rig-wwid"
# systemd's switch-root (the dracut boot) wants an OS tree.
printf 'NAME="SAN root"\nID=sanroot\n' >"$root/etc/os-release"
truncate -s 160M "$CASE_OUT/root.img"
mkfs.ext4 -q -F -U "$fs_uuid" -d "$root" "$CASE_OUT/root.img"
echo "$fs_uuid" >"$CASE_OUT/root.uuid"
log "root image and initramfs ready for 20-san-root.host"
