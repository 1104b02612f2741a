#!/bin/bash
# Path discovery against the real kernel: coldplug matches lsscsi and udev,
# grouping by WWID matches Debian's multipath, hot-added and removed paths
# come through the udev monitor (tests/guest_discovery.rs).
# Size: DISCOVERY_LUNS x DISCOVERY_HOSTS scsi_debug paths (8 x 2 in CI). For
# a scale run, load scsi_debug yourself first (e.g. add_host=4 max_luns=64,
# then `udevadm settle --timeout=2400`), export the two variables and
# DISCOVERY_WAIT_SECS=1200, and run this script (allow ~1 h under TCG).
# rig-timeout: 600
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

LUNS=${DISCOVERY_LUNS:-8}
HOSTS=${DISCOVERY_HOSTS:-2}
DISCOVER=$MPATHD_BIN/examples/discover

san_scsi_debug "$LUNS" "$HOSTS"
npaths=$((LUNS * HOSTS))
assert_eq "$npaths" "$(san_paths | wc -l)" "scsi_debug paths"

log "coldplug"
start=$(date +%s.%N)
"$DISCOVER" --lines >ours.txt
end=$(date +%s.%N)
log "discover --lines: $(wc -l <ours.txt) paths in $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}')s"
head -n 4 ours.txt

# 1. The path list matches lsscsi: same H:C:T:L -> /dev/sdX for every disk.
lsscsi | awk '$2 == "disk" { gsub(/[][]/, "", $1); print $1, $NF }' | sed 's#/dev/##' | sort >lsscsi.txt
awk '{ print $2, $1 }' ours.txt | sort >ours-hcil.txt
diff -u lsscsi.txt ours-hcil.txt
log "ok: path list == lsscsi ($(wc -l <lsscsi.txt) disks)"

# 2. dev_t and WWID match udev for every path; the VPD 0x83 fallback agrees.
while read -r dev hcil devt wwid src vpd size tpgs tpg access; do
    [ "$(dev_majmin "$dev")" = "$devt" ] || fail "$dev dev_t $devt"
    [ "$(dev_wwid "$dev")" = "$wwid" ] || fail "$dev WWID $wwid != ID_SERIAL"
    [ "$src" = ID_SERIAL ] || fail "$dev wwid source $src"
    [ "$vpd" = "$wwid" ] || fail "$dev VPD 0x83 WWID $vpd != $wwid"
    [ "$(path_access_state "$dev")" = "$access" ] || fail "$dev access_state $access"
done <ours.txt
log "ok: dev_t, ID_SERIAL, VPD 0x83 WWID and access_state agree for $(wc -l <ours.txt) paths"
log "example WWID: $(awk 'NR==1{print $4}' ours.txt)"

# 2b. The udev properties mpathd reads straight from udev's database are
# libudev's, key for key, for every disk (and there are some).
"$DISCOVER" --udev-props >props.txt
if grep -v ' same ' props.txt; then fail "udev properties differ from libudev's"; fi
assert_eq "$npaths" "$(wc -l <props.txt)" "disks compared"
awk '$3 < 10 { exit 1 }' props.txt || fail "too few udev properties: $(head -n 1 props.txt)"
log "ok: udev properties read directly == libudev's ($(head -n 1 props.txt))"

# 3. Grouping by WWID equals Debian multipath's (find_multipaths no, dry run).
printf '%s\n' "$PEER_CONF_DEFAULT" >/etc/multipath.conf
mkdir -p /etc/multipath
multipath -d -v2 >peer-dry.txt 2>peer-dry.err || true
# Dry-run map headers read ": WWID ..." (or "create: WWID ..." when real).
awk '$1 ~ /^[a-z]*:$/ { w = $2 }
     / [0-9]+:[0-9]+:[0-9]+:[0-9]+ sd[a-z]+ / {
        for (i = 1; i <= NF; i++) if ($i ~ /^sd[a-z]+$/) print w, $i }' peer-dry.txt | sort >peer-groups.txt
"$DISCOVER" --groups off 2>ours-why.txt | sort >ours-groups.txt
diff -u peer-groups.txt ours-groups.txt
assert_eq "$npaths" "$(wc -l <ours-groups.txt)" "multipathed paths"
assert_eq "$LUNS" "$(cut -d' ' -f1 ours-groups.txt | sort -u | wc -l)" "maps"
log "ok: grouping == multipath -d ($LUNS maps)"
# strict with an empty wwids file: nothing, and each path says why.
"$DISCOVER" --groups strict 2>strict-why.txt >strict.txt
assert_eq 0 "$(wc -l <strict.txt)" "strict multipaths nothing"
grep -m1 'not in the wwids file' strict-why.txt
rm -f /etc/multipath.conf

# 4. Kernel-facing tests: coldplug vs udev/sysfs, hot add/remove via the monitor.
"$GUEST_TESTS/guest_discovery" --ignored --test-threads=1 --nocapture

# 5. The example's monitor mode sees a deleted path too. (udev delivers the
# remove only after working through its queue: let it settle first.)
udev_settle 600
"$DISCOVER" --monitor 300 >monitor.jsonl &
mon=$!
wait_for "grep -q Coldplug monitor.jsonl" 60
victim=$(san_paths | tail -n1)
path_delete "$victim"
wait_for "grep -q '\"dev\":\"$victim\",\"event\":\"remove\"' monitor.jsonl" 240
kill "$mon" 2>/dev/null || true
wait "$mon" 2>/dev/null || true
log "ok: monitor reported remove of $victim"
