#!/bin/bash
# The dm layer on the real kernel (tests/guest_dm.rs): map create/read-back,
# kernel table rewrites, messages, reload under I/O, remove while open, dm
# events. Two paths of one scsi_debug LUN, neither in ALUA standby.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

san_scsi_debug 1 3
mapfile -t usable < <(paths_in_state active/optimized $(lun_paths 0); paths_in_state active/non-optimized $(lun_paths 0))
[ "${#usable[@]}" -ge 2 ] || fail "need 2 non-standby paths, have: ${usable[*]:-none}"
wwid=$(dev_wwid "${usable[0]}")
assert_eq "$wwid" "$(dev_wwid "${usable[1]}")" "both paths have one WWID"

export DM_TEST_PATH1 DM_TEST_PATH2 DM_TEST_WWID
DM_TEST_PATH1=$(dev_majmin "${usable[0]}")
DM_TEST_PATH2=$(dev_majmin "${usable[1]}")
DM_TEST_WWID=$wwid
log "paths ${usable[0]} ($DM_TEST_PATH1, $(path_access_state "${usable[0]}"))" \
    "${usable[1]} ($DM_TEST_PATH2, $(path_access_state "${usable[1]}")) wwid $wwid"

"$GUEST_TESTS/guest_dm" --ignored --test-threads=1 --nocapture 2>&1 | tee "${CASE_OUT:-/tmp}/guest_dm.out"
# Real kernel strings for the unit tests' fixtures.
grep -o 'FIXTURE .*' "${CASE_OUT:-/tmp}/guest_dm.out" >"${CASE_OUT:-/tmp}/fixtures.txt" || true
