#!/bin/bash
# rig-timeout: 600
# Boot from SAN with dracut, part 1: the RPM mpathd-boot's dracut module
# (packaging/dracut/90mpathd, put where the RPM puts it) built into a
# systemd-based initramfs by Debian's dracut-core, in this guest, where
# 10-initramfs.sh installed mpathd, with the SAN root's configuration
# (multipath.conf, the wwids file). 40-dracut-root.host boots it.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"
. "$REPO/tests/vm/cases/boot/san-conf.sh"

command -v dracut >/dev/null || fail "no dracut (tests/vm/install-deps installs dracut-core)"
[ -x /usr/sbin/mpathd ] || fail "mpathd is not installed (10-initramfs installs it)"
write_san_config
mkdir -p /usr/lib/dracut/modules.d
cp -r "$REPO/packaging/dracut/90mpathd" /usr/lib/dracut/modules.d/
chmod 755 /usr/lib/dracut/modules.d/90mpathd/*.sh
img=$CASE_OUT/initrd.img
# Only what a virtio-scsi root on a map needs: quick under TCG.
log "building a dracut initramfs with the mpathd module"
dracut --force --no-hostonly --no-hostonly-cmdline --kver "$(uname -r)" \
    -m "systemd systemd-initrd dracut-systemd udev-rules base fs-lib rootfs-block dm kernel-modules shutdown mpathd" \
    --drivers "virtio_pci virtio_scsi sd_mod ext4" "$img" 2>&1 | grep -E 'mpathd|ERROR|rror' || true
[ -s "$img" ] || fail "dracut wrote no initramfs"
list=$(lsinitrd "$img")
for f in usr/sbin/mpathd etc/multipath.conf etc/multipath/wwids 60-mpathd.rules \
    mpathd.service dm-multipath.ko; do
    grep -q "$f" <<<"$list" || fail "the dracut initramfs has no $f"
    echo "ok: dracut initramfs holds $f"
done
grep -q 'sysinit.target.wants/mpathd.service' <<<"$list" || fail "mpathd.service is not enabled in the initramfs"
echo "ok: mpathd.service enabled in the initramfs"
log "dracut initramfs ready for 40-dracut-root.host"
