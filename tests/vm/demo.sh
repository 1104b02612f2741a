#!/bin/bash
# Guest side of tests/vm/demo (runs as root in the guest, like a case script).
# Today: a multipath map built from Rust over a two-host scsi_debug SAN.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

echo "### A SAN of 2 LUNs, each seen through 2 SCSI hosts (scsi_debug)"
san_scsi_debug 2 2
lsscsi
mapfile -t paths < <(lun_paths 0)
wwid=$(dev_wwid "${paths[0]}")

echo
echo "### A multipath map over the two paths of LUN 0 ($wwid), from Rust"
"$MPATHD_BIN/examples/dm_proof" --name "demo0" --wwid "$wwid" --keep "${paths[@]}"

echo
echo "### dmsetup table / status"
dmsetup table demo0
dmsetup status demo0
echo
echo "### lsblk"
lsblk -o NAME,MAJ:MIN,SIZE,TYPE "/dev/${paths[0]}" "/dev/${paths[1]}" /dev/mapper/demo0
udev_settle
dmsetup remove --retry demo0
