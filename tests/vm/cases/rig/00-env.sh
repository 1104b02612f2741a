#!/bin/bash
# The guest is set up as the contract says.
set -eu
. "$REPO/tests/vm/lib.sh"
uname -r
test -e /dev/mapper/control
pgrep -x systemd-udevd
test -d "$MPATHD_BIN"
test -d "$GUEST_TESTS"
test -w "$CASE_OUT"
grep -q configfs /proc/mounts
lsmod | grep -q dm_multipath

# An integration-test binary from the host build runs here.
"$GUEST_TESTS/guest_rig" --ignored --test-threads=1
