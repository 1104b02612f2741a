#!/bin/bash
# The iSCSI fixture (seed 001 layout): two portals on two links give two
# paths with one WWID; cutting one link fails that path's I/O only; ALUA
# states set on the target reach the initiator.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

iscsi_san 1
mapfile -t paths < <(iscsi_paths)
assert_eq 2 "${#paths[@]}" "iSCSI paths"
wwid=$(dev_wwid "${paths[0]}")
assert_ne "" "$wwid" "WWID"
assert_eq "$wwid" "$(dev_wwid "${paths[1]}")" "one WWID on both paths"
for d in "${paths[@]}"; do
    case "$(iscsi_path_link "$d")" in 0) p0=$d ;; 1) p1=$d ;; esac
done
log "link 0 path: $p0, link 1 path: $p1"
read_ok() { dd if="/dev/$1" of=/dev/null bs=64k count=16 iflag=direct status=none; }
read_ok "$p0"
read_ok "$p1"

iscsi_link_down 0
# I/O on the cut path stalls until replacement_timeout (5 s), then fails.
if timeout 60 dd if="/dev/$p0" of=/dev/null bs=64k count=16 iflag=direct status=none; then
    fail "read on $p0 succeeded with its link down"
fi
log "read on $p0 failed as it should"
read_ok "$p1"
log "read on $p1 still works"
iscsi_link_up 0
wait_for "read_ok $p0" 60

# ALUA: the target's state for link 1's port group reaches scsi_dh_alua.
iscsi_set_alua b standby
dd if="/dev/$p1" of=/dev/null bs=4k count=1 iflag=direct status=none || true
wait_for "[ \"\$(path_access_state $p1)\" = standby ]" 30
assert_eq active/optimized "$(path_access_state "$p0")" "link 0 ALUA state"
iscsi_set_alua b ao
