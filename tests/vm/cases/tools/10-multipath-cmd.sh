#!/bin/bash
# rig-timeout: 900
# The `multipath` command against Debian's multipath 0.9.4 on the same maps
# in the same guest, with no daemon running: the output of -ll, -l, -d and
# -c, and the exit codes of every call, line by line. Maps: two LUNs x two
# paths (active/optimized + active/non-optimized), then one path failed,
# then a map whose paths are all gone. Debian's is /sbin/multipath; ours is
# the binary built on the host.
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

OURS=$MPATHD_BIN/multipath
THEIRS=/sbin/multipath
[ -x "$OURS" ] || fail "no multipath binary at $OURS"
CONF='defaults {
	find_multipaths greedy
	user_friendly_names no
	path_grouping_policy group_by_prio
	no_path_retry fail
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}'

san_scsi_debug 2 2
mapfile -t wwids < <(san_wwids)
assert_eq 2 "${#wwids[@]}" "LUNs"
mkdir -p /etc/multipath
printf '%s\n' "$CONF" >/etc/multipath.conf

MISMATCH=0
# WRAP: a command both are run under (the udev environment for -u).
WRAP=()
# same STEP ARGS...: run both commands; stdout and exit code must be equal,
# and stderr empty for both or for neither (sm tests "no output at all").
same() {
    local step=$1 rc_t rc_o
    shift
    rc_t=0; "${WRAP[@]}" "$THEIRS" "$@" >"$CASE_OUT/$step.theirs" 2>"$CASE_OUT/$step.theirs.err" || rc_t=$?
    rc_o=0; "${WRAP[@]}" "$OURS" "$@" >"$CASE_OUT/$step.ours" 2>"$CASE_OUT/$step.ours.err" || rc_o=$?
    local ok=1
    if ! diff -u "$CASE_OUT/$step.theirs" "$CASE_OUT/$step.ours"; then ok=0; fi
    if [ "$rc_t" != "$rc_o" ]; then
        echo "exit code: multipath $rc_t, ours $rc_o"
        ok=0
    fi
    local et=0 eo=0
    [ -s "$CASE_OUT/$step.theirs.err" ] && et=1
    [ -s "$CASE_OUT/$step.ours.err" ] && eo=1
    if [ "$et" != "$eo" ]; then
        echo "stderr: multipath's $( [ $et = 1 ] && echo has text || echo is empty), ours $( [ $eo = 1 ] && echo has text || echo is empty)"
        sed 's/^/  theirs: /' "$CASE_OUT/$step.theirs.err"
        sed 's/^/  ours: /' "$CASE_OUT/$step.ours.err"
        ok=0
    fi
    if [ "$ok" = 1 ]; then
        echo "ok: multipath $* (exit $rc_o, $(wc -l <"$CASE_OUT/$step.ours") lines)"
    else
        echo "MISMATCH: multipath $*"
        MISMATCH=$((MISMATCH + 1))
    fi
}

# Maps made by Debian's multipath itself (no daemon).
"$THEIRS" -v0 || true
udev_settle 60
wait_for "[ \$(mpath_map_count) -ge 2 ]" 60
dmsetup table --target multipath
mapfile -t lun0 < <(lun_paths 0)
sda=${lun0[0]}

same ll -ll
same l -l
same ll-map -ll "${wwids[0]}"
same l-map -l "${wwids[1]}"
same ll-dev -ll "$sda"
same ll-devpath -ll "/dev/$sda"
same ll-devt -ll "$(dev_majmin "$sda")"
same ll-none -ll no-such-map
same l-none -l no-such-map
same c-path -c "/dev/$sda"
same c-none -c /dev/no-such-disk
same dry-run-present -d
# -t: mpathd's table is 0.9.4's plus the euroNAS eSSM entry (seed 002);
# with that entry taken out, byte-equal.
strip_essm() {
    awk '/^\tdevice \{$/ { buf = $0; getline; if ($0 ~ /vendor "\^eSSM"/) { skip = 1; next } print buf }
        skip && /^\t\}$/ { skip = 0; next }
        !skip'
}
"$THEIRS" -t >"$CASE_OUT/t.theirs" 2>/dev/null || true
"$OURS" -t >"$CASE_OUT/t.ours.full" 2>/dev/null || true
grep -q 'vendor "^eSSM"' "$CASE_OUT/t.ours.full" || fail "our -t lacks the eSSM entry"
strip_essm <"$CASE_OUT/t.ours.full" >"$CASE_OUT/t.ours"
if diff -u "$CASE_OUT/t.theirs" "$CASE_OUT/t.ours"; then
    echo "ok: multipath -t ($(wc -l <"$CASE_OUT/t.ours") lines, eSSM entry aside)"
else
    echo "MISMATCH: multipath -t"; MISMATCH=$((MISMATCH + 1))
fi
same show-config-local -T

# A dry run that would create a map.
dmsetup remove "${wwids[1]}"
udev_settle 30
same dry-run-create -d
same dry-run-create-v3 -d -v2 -p multibus
# Creation with no daemon: the same "create:" report, exit code and table.
dmsetup remove "${wwids[1]}" 2>/dev/null || true
udev_settle 30
rc=0; "$THEIRS" -v2 "${wwids[1]}" >"$CASE_OUT/create.theirs" 2>/dev/null || rc=$?
echo "rc $rc" >>"$CASE_OUT/create.theirs"
udev_settle 30
t_theirs=$(dmsetup table "${wwids[1]}")
dmsetup remove "${wwids[1]}"
udev_settle 30
rc=0; "$OURS" -v2 "${wwids[1]}" >"$CASE_OUT/create.ours" 2>"$CASE_OUT/create.ours.err" || rc=$?
echo "rc $rc" >>"$CASE_OUT/create.ours"
udev_settle 30
if diff -u "$CASE_OUT/create.theirs" "$CASE_OUT/create.ours"; then
    echo "ok: multipath -v2 WWID creates with the same report"
else
    cat "$CASE_OUT/create.ours.err"; echo "MISMATCH: create"; MISMATCH=$((MISMATCH + 1))
fi
assert_eq "$t_theirs" "$(dmsetup table "${wwids[1]}")" "table of a map our multipath created"

# -u and -U as udev's rules run them: the device's udev properties in the
# environment, with ACTION and SEQNUM as an event has them (libudev reads
# the device of -U from there and refuses an environment without them).
udev_env() { # DEV CMD...
    local d=$1
    shift
    (
        set -a
        eval "$(udevadm info -q property -x "/dev/$d")"
        ACTION=add
        SEQNUM=1
        exec "$@"
    )
}
claim_steps() { # TAG: -u on a path of a map and on a path of no map, -U on a map
    WRAP=(udev_env "$sda")
    same "u-$1" -u "$sda"
    WRAP=(udev_env "$sdb1")
    same "u-nomap-$1" -u "$sdb1"
    U_steps "U-$1" "${wwids[0]}"
}
# U_steps STEP WWID: -U as udev's rules run it on the map's dm device.
U_steps() {
    local dm
    dm=$(basename "$(readlink -f "/dev/mapper/$2")")
    WRAP=(udev_env "$dm")
    same "$1" -U "$dm"
    WRAP=()
    # Why multipath-tools answered as it did, for the record.
    udev_env "$dm" "$THEIRS" -v4 -U "$dm" >"$CASE_OUT/$1.theirs.v4" 2>&1 || true
}
mapfile -t lun1 < <(lun_paths 1)
sdb1=${lun1[0]}
dmsetup remove "${wwids[1]}" 2>/dev/null || true
udev_settle 30
# No daemon running (multipath-tools asks whether one is), then under each
# find_multipaths mode with mpathd answering on the socket, then with the
# path's WWID blacklisted.
claim_steps nodaemon
# mpathd in strict mode with only LUN 0 in the wwids file, so that LUN 1's
# paths stay out of any map.
"$THEIRS" -w "${wwids[1]}" >/dev/null
printf '%s\n' "${CONF/find_multipaths greedy/find_multipaths strict}" >/etc/multipath.conf
"$MPATHD_BIN/mpathd" -d -v2 >"$CASE_OUT/mpathd-claim.log" 2>&1 &
claim_pid=$!
wait_for "$MPATHD_BIN/mpathd show status >/dev/null 2>&1" 60 || fail "mpathd did not answer"
for fm in greedy yes strict smart no; do
    printf '%s\n' "${CONF/find_multipaths greedy/find_multipaths $fm}" >/etc/multipath.conf
    claim_steps "$fm"
done
cp /etc/multipath/wwids "$CASE_OUT/wwids.saved"
rm -f /etc/multipath/wwids
printf '%s\n' "${CONF/find_multipaths greedy/find_multipaths strict}" >/etc/multipath.conf
claim_steps strict-nowwids
cp "$CASE_OUT/wwids.saved" /etc/multipath/wwids
# (One blacklist section: multipath-tools does not apply a second one.)
printf '%s\n' "${CONF/blacklist \{/blacklist \{
	wwid \"${wwids[0]}\"}" >/etc/multipath.conf
claim_steps blacklisted
printf '%s\n' "$CONF" >/etc/multipath.conf
kill "$claim_pid"
wait "$claim_pid" || true
"$THEIRS" -v0 || true
udev_settle 60

# One path failed in the kernel: a direct read makes dm fail it.
path_offline "$sda"
dd if="/dev/mapper/${wwids[0]}" of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null || true
sleep 1
dmsetup status "${wwids[0]}"
same ll-failed -ll
same l-failed -l
U_steps U-failed "${wwids[0]}"
path_online "$sda"

# A map whose paths are all gone.
for d in $(lun_paths 1); do path_delete "$d"; done
sleep 2
dmsetup table "${wwids[1]}" || true
same ll-gone -ll
same l-gone -l
U_steps U-gone "${wwids[1]}"

# wwids file handling: -a, -w, -W (exit codes and the file).
rm -f /etc/multipath/wwids
for t in theirs ours; do
    bin=$THEIRS; [ $t = ours ] && bin=$OURS
    rm -f /etc/multipath/wwids
    "$bin" -a "${wwids[0]}" >"$CASE_OUT/a.$t" 2>&1; echo "rc $?" >>"$CASE_OUT/a.$t"
    "$bin" -a "${wwids[0]}" >>"$CASE_OUT/a.$t" 2>&1; echo "rc $?" >>"$CASE_OUT/a.$t"
    grep -v '^#' /etc/multipath/wwids >>"$CASE_OUT/a.$t" || true
    "$bin" -w "${wwids[0]}" >>"$CASE_OUT/a.$t" 2>&1; echo "rc $?" >>"$CASE_OUT/a.$t"
    grep -v '^#' /etc/multipath/wwids >>"$CASE_OUT/a.$t" || true
    "$bin" -W >>"$CASE_OUT/a.$t" 2>&1; echo "rc $?" >>"$CASE_OUT/a.$t"
    grep -v '^#' /etc/multipath/wwids >>"$CASE_OUT/a.$t" || true
done
if diff -u "$CASE_OUT/a.theirs" "$CASE_OUT/a.ours"; then
    echo "ok: -a, -w, -W: same messages, exit codes and wwids file"
else
    echo "MISMATCH: -a/-w/-W"; MISMATCH=$((MISMATCH + 1))
fi

# Flush: -f MAP and -F leave no map behind; exit codes as multipath's.
same f-none -f no-such-map
"$OURS" -f "${wwids[1]}"; echo "ours -f rc $?"
[ -e "/dev/mapper/${wwids[1]}" ] && fail "-f left ${wwids[1]}"
"$OURS" -F; echo "ours -F rc $?"
assert_eq 0 "$(mpath_map_count)" "maps after -F"

[ "$MISMATCH" = 0 ] || fail "$MISMATCH output(s) differ from Debian's multipath"
echo "ok: the multipath command matches Debian's multipath 0.9.4"
