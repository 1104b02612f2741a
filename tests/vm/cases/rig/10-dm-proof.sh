#!/bin/bash
# device-mapper multipath from Rust (examples/dm_proof.rs) over the two paths
# of one scsi_debug LUN: map create, udev links, read I/O, fail/reinstate
# by target message, remove.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

san_scsi_debug 4 2
assert_eq 8 "$(san_paths | wc -l)" "scsi_debug paths"
assert_eq 4 "$(san_wwids | wc -l)" "distinct WWIDs"

mapfile -t paths < <(lun_paths 0)
assert_eq 2 "${#paths[@]}" "paths of LUN 0"
wwid=$(dev_wwid "${paths[0]}")
assert_eq "$wwid" "$(dev_wwid "${paths[1]}")" "both paths have one WWID"

log "running dm_proof"
"$MPATHD_BIN/examples/dm_proof" --name dmproof --wwid "$wwid" --keep "${paths[@]}"

# The map as dmsetup sees it, and plain dd through it.
log "dm_proof done"
dmsetup table dmproof
dmsetup status dmproof
dd if=/dev/mapper/dmproof of=/dev/null bs=1M count=4 iflag=direct
udev_settle
dmsetup remove --retry dmproof
wait_for "[ ! -e /dev/mapper/dmproof ]" 30
