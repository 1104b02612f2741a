#!/bin/bash
# rig-timeout: 3600
# profile-cold-ab's cold starts with Debian's multipathd between mpathd's:
# does a multipathd turn (start, maps, flush) leave the guest slower for
# the next mpathd start, as the benchmark's last turn suggests? Per turn
# the same figures as profile-cold-ab (udev's finished path events among
# them). Runs in the rig's guest:
#   cargo build --release --bins --example bench_client
#   RIG_SKIP_BUILD=1 RIG_MEM=2048 \
#       tests/vm/run --script profile-cold-mixed bench/guest/profile-cold-mixed.sh
TURNS="new new multipathd new multipathd new"
# shellcheck source=profile-cold-ab.sh
. "$REPO/bench/guest/profile-cold-ab.sh"
