#!/bin/bash
# Path discovery at scale (issue #4), with the daemon running:
#  1. 64 LUNs x 4 hosts (256 paths): mpathd's `show paths` equals lsscsi and
#     udev (dev, H:C:T:L, dev_t, WWID = ID_SERIAL), checked both ways;
#  2. paths grouped by WWID exactly as multipath-tools groups them (Debian's
#     `multipath -d -v2` dry run on the first 256 paths, Debian's multipathd
#     `show paths format "%w %d %m"` on the final 500), and exactly as the
#     kernel's dm tables hold them (after each step);
#  3. a hot add of 64 LUNs (256 paths at once): every new LUN gets exactly
#     one map with its 4 paths, created once and never reloaded (the daemon
#     log's "creating map"/"reloading map" lines, counted per map), and the
#     old maps are left alone;
#  4. deleting every path of 3 LUNs removes them from `show paths` and
#     removes their maps; the remaining 500 paths still match the kernel.
# Sizes: SCALE_LUNS, SCALE_HOT_LUNS, SCALE_GONE_LUNS (64, 64, 3).
#
# The storm. Under TCG udev needs minutes for 256 new devices (0.5-3 s of
# rules and helper programs each), so the daemon would see the new paths
# trickle in one by one over several minutes, not the burst a real host's
# udev delivers in a second or two. To give the daemon that burst, it is
# paused (SIGSTOP) from the rescan until udev has settled, and resumed: the
# kernel keeps the uevents in its 128 MiB monitor socket, and it reads them
# all at once, as it would on real hardware.
#
# Takes ~15-25 min under TCG, most of it udev settling the 512 sd devices.
# rig-timeout: 2700
set -euo pipefail
. "$REPO/tests/vm/lib.sh"

LUNS=${SCALE_LUNS:-64}
HOT=${SCALE_HOT_LUNS:-64}
GONE=${SCALE_GONE_LUNS:-3}
HOSTS=4
M=$MPATHD_BIN/mpathd
MLOG=$CASE_OUT/mpathd.log
T_START=$SECONDS

phase_t=$SECONDS
phase() { # NAME: log the time the previous phase took
    log "== $1 (previous phase took $((SECONDS - phase_t)) s, $((SECONDS - T_START)) s so far)"
    phase_t=$SECONDS
}

# ---------------------------------------------------------------- views
# kernel_view NAME -> NAME.kernel: "dev H:C:T:L maj:min ID_SERIAL" for every
# scsi_debug disk, from udev's database; lsscsi must say the same about dev,
# H:C:T:L and dev_t (NAME.lsscsi, NAME.udev).
kernel_view() {
    local n=$1
    lsscsi -d >"$n.lsscsi-raw"
    # [0:0:0:5]  disk  Linux  scsi_debug  0191  /dev/sdf[8:80]
    awk '$2 == "disk" && $4 == "scsi_debug" {
            h = $1; gsub(/[][]/, "", h)
            if (!match($0, /\/dev\/sd[a-z]+/)) next
            d = substr($0, RSTART + 5, RLENGTH - 5)
            if (!match($0, /\[[0-9]+:[0-9]+\][[:space:]]*$/)) next
            t = substr($0, RSTART + 1); sub(/\][[:space:]]*$/, "", t)
            print d, h, t }' "$n.lsscsi-raw" | sort >"$n.lsscsi"
    log "$n: lsscsi read"
    # One udevadm for all the disks (--export-db would walk every device).
    local d devs=()
    for d in /sys/class/block/sd*; do devs+=("$d"); done
    udevadm info --query=all "${devs[@]}" >"$n.udev-db"
    log "$n: udev database read"
    awk 'BEGIN { RS = ""; FS = "\n" }
        {
            delete e
            for (i = 1; i <= NF; i++)
                if ($i ~ /^E: /) { kv = substr($i, 4); p = index(kv, "="); e[substr(kv, 1, p - 1)] = substr(kv, p + 1) }
            if (e["SUBSYSTEM"] != "block" || e["DEVTYPE"] != "disk" || e["ID_MODEL"] != "scsi_debug") next
            n = split(e["DEVPATH"], c, "/")
            hctl = ""
            for (i = 2; i <= n; i++) if (c[i] == "block") hctl = c[i - 1]
            d = e["DEVNAME"]; sub(/^\/dev\//, "", d)
            print d, hctl, e["MAJOR"] ":" e["MINOR"], (e["ID_SERIAL"] == "" ? "-" : e["ID_SERIAL"])
        }' "$n.udev-db" | sort >"$n.kernel"
    cut -d' ' -f1-3 "$n.kernel" >"$n.udev"
    diff -u "$n.lsscsi" "$n.udev" || fail "$n: lsscsi and udev disagree (dev H:C:T:L dev_t)"
    rm -f "$n.udev-db"
}

# daemon_view NAME -> NAME.daemon ("dev H:C:T:L maj:min WWID") and
# NAME.daemon-maps ("map dev") from the running daemon's show paths.
daemon_view() {
    "$M" show paths raw format "%d %i %D %w %m" | sort >"$1.daemon-all"
    cut -d' ' -f1-4 "$1.daemon-all" >"$1.daemon"
    awk '{ print $5, $1 }' "$1.daemon-all" | sort >"$1.daemon-maps"
}

daemon_path_count() { "$M" show paths raw format "%d" | grep -c .; }

# dm_view NAME -> NAME.dm: "map dev" for every path in the kernel's
# multipath tables (dev_t mapped to names with NAME.kernel).
dm_view() {
    dmsetup table --target multipath >"$1.dm-tables"
    awk 'NR == FNR { dev[$3] = $1; next }
        { m = $1; sub(/:$/, "", m)
          for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) print m, ($i in dev ? dev[$i] : "?" $i) }' \
        "$1.kernel" "$1.dm-tables" | sort >"$1.dm"
}

# maps_complete N: exactly N multipath maps, each with HOSTS paths in its table.
maps_complete() {
    [ "$(dmsetup table --target multipath | awk -v want="$HOSTS" '
        { n = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) n++
          if (n == want) ok++; all++ }
        END { print all + 0 == ok + 0 ? ok + 0 : -1 }')" = "$1" ]
}

# check_views NAME NPATHS NMAPS: the daemon's path list equals the kernel's,
# its grouping equals the dm tables', and the numbers are right.
check_views() {
    local n=$1 np=$2 nm=$3
    kernel_view "$n"
    assert_eq "$np" "$(grep -c . "$n.kernel")" "$n: scsi_debug disks in lsscsi/udev"
    if grep -q ' -$' "$n.kernel"; then fail "$n: udev has no ID_SERIAL for $(grep -c ' -$' "$n.kernel") disks"; fi
    assert_eq "$nm" "$(cut -d' ' -f4 "$n.kernel" | sort -u | grep -c .)" "$n: distinct WWIDs"
    wait_for "[ \$(daemon_path_count) -eq $np ]" 120 || fail "$n: daemon does not show $np paths"
    daemon_view "$n"
    diff -u "$n.kernel" "$n.daemon" || fail "$n: daemon's show paths (dev H:C:T:L dev_t WWID) differs from lsscsi/udev"
    log "ok: $n: show paths == lsscsi == udev for $np paths (dev, H:C:T:L, dev_t, WWID = ID_SERIAL)"
    # With user_friendly_names no, a map is named by its WWID.
    awk '{ print $4, $1 }' "$n.kernel" | sort >"$n.by-wwid"
    diff -u "$n.by-wwid" "$n.daemon-maps" || fail "$n: daemon's map membership differs from grouping by ID_SERIAL"
    dm_view "$n"
    diff -u "$n.daemon-maps" "$n.dm" || fail "$n: daemon's map membership differs from the kernel's dm tables"
    assert_eq "$nm" "$(cut -d' ' -f1 "$n.dm" | sort -u | grep -c .)" "$n: maps in the kernel"
    log "ok: $n: $np paths in $nm maps of $HOSTS, grouped by WWID, as the dm tables hold them"
}

# peer_groups NAME: Debian's multipath dry run (no maps may exist) ->
# NAME.peer ("WWID dev" for every path it would multipath).
peer_groups() {
    local t0=$SECONDS
    multipath -d -v2 >"$1.peer-dry" 2>"$1.peer-dry.err" || true
    # Dry-run map headers read ": WWID ..." ("create: WWID ..." when real).
    awk '$1 ~ /^[a-z]*:$/ { w = $2 }
         / [0-9]+:[0-9]+:[0-9]+:[0-9]+ sd[a-z]+ / {
            for (i = 1; i <= NF; i++) if ($i ~ /^sd[a-z]+$/) print w, $i }' "$1.peer-dry" | sort >"$1.peer"
    log "multipath -d -v2: $(grep -c . "$1.peer") paths in $(cut -d' ' -f1 "$1.peer" | sort -u | grep -c .) maps ($((SECONDS - t0)) s)"
}

# Log lines from line FROM+1 on, without colour codes.
log_since() { tail -n +$(($1 + 1)) "$MLOG" | sed 's/\x1b\[[0-9;]*m//g'; }
log_len() { grep -c '' "$MLOG" || true; }
# per_map FROM WHAT -> "map count" for log lines "WHAT map=NAME ..."
per_map() { { log_since "$1" | grep -F "$2" || true; } | sed -n 's/.* map=\([^ ]*\).*/\1/p' | sort | uniq -c | awk '{ print $2, $1 }'; }

# ---------------------------------------------------------------- 1. the SAN
phase "SAN: $LUNS LUNs x $HOSTS hosts"
san_scsi_debug_active "$LUNS" "$HOSTS"
log "SAN hosts: ${SAN_HOSTS[*]}"
for h in "${SAN_HOSTS[@]}"; do
    log "host$h access states: $(cat /sys/class/scsi_host/host"$h"/device/target*/*/access_state | sort | uniq -c | tr -s ' \n' ' ')"
done

# ---------------------------------------------------------------- 2. peer grouping first
phase "Debian multipath -d -v2 on $((LUNS * HOSTS)) paths"
printf '%s\n' "$PEER_CONF_DEFAULT" >/etc/multipath.conf
mkdir -p /etc/multipath
rm -f /etc/multipath/wwids
peer_groups cold

# ---------------------------------------------------------------- mpathd, cold start
phase "mpathd cold start"
: >"$MLOG"
"$M" -d -v2 >>"$MLOG" 2>&1 &
MPATHD_PID=$!
t0=$SECONDS
wait_for "maps_complete $LUNS" 600 || fail "mpathd did not build $LUNS complete maps"
log "mpathd: $LUNS maps of $HOSTS paths $((SECONDS - t0)) s after start"
wait_for "$M show daemon | grep -Eq 'idle|running'" 120
per_map 0 "creating map" >cold.creates
per_map 0 "reloading map" >cold.reloads
assert_eq "$LUNS 1" "$(wc -l <cold.creates) $(cut -d' ' -f2 cold.creates | sort -u | tr '\n' ' ' | sed 's/ $//')" \
    "cold start: maps created, each exactly once"
log "cold start reloads: $(wc -l <cold.reloads) maps reloaded"

check_views cold $((LUNS * HOSTS)) "$LUNS"
diff -u cold.peer cold.daemon-maps || fail "grouping differs from Debian multipath -d -v2"
log "ok: grouping of $((LUNS * HOSTS)) paths == Debian multipath -d -v2 ($LUNS maps)"
"$M" show topology >cold-topology.txt

# ---------------------------------------------------------------- 3. hot add
phase "hot add: $HOT LUNs x $HOSTS hosts = $((HOT * HOSTS)) paths at once"
# dm devices of the cold start first, so only the new paths are in flight.
udev_settle 900
wait_for "$M show daemon | grep -Eq 'idle|running'" 120
mark=$(log_len)
log "pausing mpathd (SIGSTOP) while the kernel and udev bring the new paths"
kill -STOP "$MPATHD_PID"
san_hot_add "$HOT"
total=$(((LUNS + HOT) * HOSTS))
wait_for "[ \$(sd_devices scsi_debug | wc -l) -ge $total ]" 600 || {
    kill -CONT "$MPATHD_PID"
    fail "the hot add did not bring $total sd devices"
}
t0=$SECONDS
udev_settle 1800 || { kill -CONT "$MPATHD_PID"; fail "udev did not settle after the hot add"; }
log "udev settled the hot add in $((SECONDS - t0)) s; resuming mpathd"
kill -CONT "$MPATHD_PID"
t0=$SECONDS
wait_for "maps_complete $((LUNS + HOT))" 600 || fail "mpathd did not complete $((LUNS + HOT)) maps after the hot add"
log "mpathd: $HOT new maps of $HOSTS paths $((SECONDS - t0)) s after it resumed"
wait_for "$M show daemon | grep -Eq 'idle|running'" 120
# Late reloads would show up in the next seconds: give them a chance.
sleep 10
per_map "$mark" "creating map" >hot.creates
per_map "$mark" "reloading map" >hot.reloads
log_since "$mark" | grep -E "uevent|batch|overflow" | head -n 20 || true

check_views hot "$total" $((LUNS + HOT))
cut -d' ' -f4 cold.kernel | sort -u >old.wwids
cut -d' ' -f4 hot.kernel | sort -u | comm -23 - old.wwids >new.wwids
assert_eq "$HOT" "$(grep -c . new.wwids)" "new WWIDs"
# "map creates reloads paths" for every new WWID
awk 'FILENAME == "hot.creates" { c[$1] = $2; next }
     FILENAME == "hot.reloads" { r[$1] = $2; next }
     FILENAME == "hot.dm" { n[$1]++; next }
     { print $1, c[$1] + 0, r[$1] + 0, n[$1] + 0 }' hot.creates hot.reloads hot.dm new.wwids >hot.per-map
bad=$(awk -v h="$HOSTS" '$2 != 1 || $3 != 0 || $4 != h' hot.per-map | tee -a /dev/stderr | grep -c . || true)
[ "$bad" = 0 ] || fail "$bad of $HOT new maps were not created exactly once with $HOSTS paths and no reload"
log "ok: each of the $HOT new LUNs got one map with $HOSTS paths: one 'creating map', no 'reloading map' ($(wc -l <hot.creates) creates, $(wc -l <hot.reloads) reloads in the log since the hot add)"
old_touched=$(cat hot.creates hot.reloads | cut -d' ' -f1 | sort -u | comm -12 - old.wwids | grep -c . || true)
assert_eq 0 "$old_touched" "old maps created or reloaded by the hot add"
"$M" show topology >hot-topology.txt

# ---------------------------------------------------------------- 4. removal
phase "removing every path of $GONE LUNs"
udev_settle 900
# LUNs from both halves: old ones and hot-added ones.
gone_luns=()
for ((i = 0; i < GONE; i++)); do
    gone_luns+=($(((i * (LUNS + HOT) / GONE + LUNS / 2 + i) % (LUNS + HOT))))
done
: >gone.devs
: >gone.wwids
for l in "${gone_luns[@]}"; do
    awk -v l="$l" '{ split($2, h, ":"); if (h[4] == l) print }' hot.kernel >"gone-$l.txt"
    assert_eq "$HOSTS" "$(grep -c . "gone-$l.txt")" "paths of LUN $l"
    cut -d' ' -f1 "gone-$l.txt" >>gone.devs
    cut -d' ' -f4 "gone-$l.txt" | sort -u >>gone.wwids
done
assert_eq "$GONE" "$(sort -u gone.wwids | grep -c .)" "WWIDs to remove"
log "LUNs ${gone_luns[*]}: WWIDs $(tr '\n' ' ' <gone.wwids), paths $(tr '\n' ' ' <gone.devs)"
mark=$(log_len)
while read -r d; do
    echo 1 >"/sys/block/$d/device/delete"
done <gone.devs
log "deleted $(grep -c . gone.devs) paths"
left=$((total - GONE * HOSTS))
wait_for "[ \$(daemon_path_count) -eq $left ]" 300 || fail "daemon still shows deleted paths"
"$M" show paths raw format "%d" >after-remove.paths
if grep -Fxf gone.devs after-remove.paths; then fail "deleted paths still in show paths"; fi
log "ok: the $(grep -c . gone.devs) deleted paths are gone from show paths"
while read -r w; do
    wait_for "! dmsetup info '$w' >/dev/null 2>&1" 120 || fail "map $w not removed"
done <gone.wwids
# The daemon learns the remove is done after udev has processed it (the
# remove still syncs with udev), so its list may lag dmsetup a little.
wait_for "! \"$M\" show maps | grep -qFf gone.wwids" 120 || {
    "$M" show maps >after-remove.maps
    grep -Ff gone.wwids after-remove.maps
    fail "removed maps still in show maps"
}
per_map "$mark" "last path gone: removing map" >gone.removes
assert_eq "$(sort gone.wwids | tr '\n' ' ')" "$(cut -d' ' -f1 gone.removes | tr '\n' ' ')" "maps removed with their last path (daemon log)"
log "ok: the $GONE maps are removed, in the kernel and in show maps"
udev_settle 900
check_views after-remove "$left" $((LUNS + HOT - GONE))

# ---------------------------------------------------------------- 5. grouping of all, against Debian
# Debian's multipathd on the same 500 paths, on top of mpathd's maps (it
# reloads any map it would group differently): its own WWIDs and maps.
phase "Debian multipathd on the $left paths (mpathd stopped, its maps left in place)"
kill -TERM "$MPATHD_PID"
wait "$MPATHD_PID" || true
MPATHD_PID=
rm -f /etc/multipath/wwids
peer_done() {
    multipathd show paths raw format "%w %d %m" >final.peer-all 2>/dev/null || return 1
    [ "$(grep -c ' sd' final.peer-all)" = "$left" ] && ! grep -q '\[orphan\]' final.peer-all
}
PEER_VERBOSITY=2 start_peer_multipathd
t0=$SECONDS
wait_for peer_done 600 || fail "Debian multipathd did not put the $left paths in maps"
log "Debian multipathd: $left paths in maps $((SECONDS - t0)) s after it answered"
awk '{ print $3, $2 }' final.peer-all | sort >final.peer
awk '{ print $2, $1, $3 }' final.peer-all | sort >final.peer-wwids
diff -u <(awk '{ print $1, $4, $5 }' after-remove.daemon-all | sort) final.peer-wwids ||
    fail "Debian multipathd's WWIDs or maps differ from mpathd's"
diff -u after-remove.daemon-maps final.peer || fail "grouping after hot add and removal differs from Debian multipathd's"
log "ok: grouping of $left paths == Debian multipathd's show paths (%w %d %m, $((LUNS + HOT - GONE)) maps)"
# (multipath-tools 0.9.4 has no detect_pgpolicy: for these LUNs it uses
# failover, one path per group, where mpathd, as newer multipath-tools,
# groups by ALUA priority; so it reloads every map, with the same paths.)
log "Debian multipathd reloaded $(grep -c ': reload \[' "$CASE_OUT/peer-multipathd.log" || true) maps (path groups, not membership)"
# Stop it without `multipath -F`: that waits for udev on every map (~6 s
# each under TCG). Its maps stay and are removed without the udev wait.
log "stopping Debian multipathd; removing its $(mpath_map_count) maps"
multipathd shutdown >/dev/null 2>&1 || true
wait_for "! running multipathd" 60 || kill -9 "$PEER_MULTIPATHD_PID"
PEER_MULTIPATHD_PID=
t0=$SECONDS
flush_maps() {
    dmsetup --noudevsync remove_all >/dev/null 2>&1 || true
    [ "$(mpath_map_count)" = 0 ]
}
wait_for flush_maps 120 || {
    log "maps left:"
    dmsetup info -c -o name,open,attr || true
}
log "maps removed in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- findings
warns=$(log_since 0 | grep -cE ' (WARN|ERROR) ' || true)
log "daemon log: $warns WARN/ERROR lines"
# by message (timestamps cut)
{ log_since 0 | grep -E ' (WARN|ERROR) ' || true; } | cut -d' ' -f2- | cut -c1-160 | sort | uniq -c | sort -rn | head -n 10
phase "done: $LUNS+$HOT LUNs x $HOSTS hosts in $((SECONDS - T_START)) s"
