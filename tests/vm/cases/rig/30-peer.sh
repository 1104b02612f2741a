#!/bin/bash
# The peer fixture: Debian's multipathd builds one map per LUN of a
# scsi_debug SAN, answers its socket, and stop_peer_multipathd cleans up.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

san_scsi_debug 2 2
start_peer_multipathd
wait_for '[ "$(multipathd show maps raw format "%w" | wc -l)" = 2 ]' 60
multipathd show maps
multipathd show paths
for w in $(san_wwids); do
    dmsetup info "$(multipathd show maps raw format "%n %w" | awk -v w="$w" '$2 == w { print $1 }')" >/dev/null \
        || fail "no map for $w"
done
stop_peer_multipathd
assert_eq "" "$(dmsetup ls --target multipath | grep -v 'No devices' || true)" "maps after stop"
