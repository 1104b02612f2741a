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
"$MPATHD_BIN/examples/dm_proof" --name dmproof --wwid "$wwid" "${paths[@]}"
log "dm_proof done"
# The proof removed its map; the paths are plain disks again.
if dmsetup info dmproof >/dev/null 2>&1; then fail "map dmproof still exists"; fi
dd if="/dev/${paths[0]}" of=/dev/null bs=1M count=4 iflag=direct
