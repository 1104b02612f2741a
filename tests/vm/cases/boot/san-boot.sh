# Sourced by the boot suite's host cases: san_boot NAME INITRD EXTRA_CMDLINE
# boots the kernel with INITRD, the root filesystem (a fresh copy of the
# image 10-initramfs.sh built) on one LUN reached through two virtio-scsi
# HBAs (two paths, same WWN), and prints what the console said of it
# (the root's init, san-init, reports "SANROOT: ..."). The console is
# left in $CASE_OUT/NAME.console.log.
src=$OUT/10-initramfs
[ -s "$src/root.img" ] && [ -s "$src/root.uuid" ] || { echo "FAIL: 10-initramfs left no root image"; exit 1; }
uuid=$(cat "$src/root.uuid")

san_boot() {
    local console=$CASE_OUT/$1.console.log
    # Each boot gets a fresh copy: the image is written to.
    cp --sparse=always "$src/root.img" "$CASE_OUT/root.img"
    echo "booting $1: root=UUID=$uuid $3"
    timeout -k 5 280 qemu-system-x86_64 \
        -nodefaults -no-user-config -display none -no-reboot \
        -accel tcg -cpu "${RIG_CPU:-max}" -smp 2 -m 1024 -nic none \
        -kernel "$KERNEL" -initrd "$2" \
        -append "console=ttyS0 panic=-1 loglevel=4 root=UUID=$uuid rw $3" \
        -serial "file:$console" \
        -device virtio-scsi-pci,id=hba0,addr=0x4 -device virtio-scsi-pci,id=hba1,addr=0x5 \
        -blockdev "driver=raw,node-name=lun,file.driver=file,file.filename=$CASE_OUT/root.img" \
        -device scsi-hd,bus=hba0.0,drive=lun,share-rw=on,wwn=0x5000c50015ea71ac,serial=SANROOT \
        -device scsi-hd,bus=hba1.0,drive=lun,share-rw=on,wwn=0x5000c50015ea71ac,serial=SANROOT \
        </dev/null >"$CASE_OUT/$1.qemu.log" 2>&1
    echo "qemu exit $?"
    rm -f "$CASE_OUT/root.img"
    grep -aoE '(SANROOT|rig): .*' "$console" | tr -d '\r'
}

# san_passed NAME: the boot's root check passed; else say why and fail.
san_passed() {
    grep -qa '^SANROOT: PASS' "$CASE_OUT/$1.console.log" && return 0
    echo "FAIL: $1: $(grep -m1 -a '^SANROOT: FAIL' "$CASE_OUT/$1.console.log" | tr -d '\r')"
    tail -n 40 "$CASE_OUT/$1.console.log"
    exit 1
}

# san_on_a_path NAME: the boot (with multipath switched off) reached the
# root check and the check said the root is not a map.
san_on_a_path() {
    if grep -qa '^SANROOT: PASS' "$CASE_OUT/$1.console.log"; then
        echo "FAIL: $1: the check passed with multipath off (it cannot tell a map from a path)"
        exit 1
    fi
    grep -qa '^SANROOT: FAIL: the root .* is not a multipath map' "$CASE_OUT/$1.console.log" || {
        echo "FAIL: $1: the boot did not reach the root check"
        tail -n 30 "$CASE_OUT/$1.console.log"
        exit 1
    }
    echo "ok: $1: the root is a plain path and the check says so"
}
