# Sourced by the boot suite's guest cases: the SAN root's identity and the
# multipath configuration that goes into its initramfs (the rig removes
# /etc/multipath* after every case, so each case writes it again).

# The WWID QEMU's scsi-hd reports for wwn=0x5000c50015ea71ac (NAA 5, as
# scsi_id prints it); san-boot.sh gives both disks that wwn.
wwid=35000c50015ea71ac

write_san_config() {
    mkdir -p /etc/multipath
    cat >/etc/multipath.conf <<'CONF'
defaults {
    find_multipaths strict
    user_friendly_names no
    polling_interval 2
}
CONF
    printf '# Multipath wwids, Version : 1.0\n/%s/\n' "$wwid" >/etc/multipath/wwids
}
