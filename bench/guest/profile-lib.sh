# Shared by the profile scripts (profile-cold.sh, profile-hot.sh): the
# release binaries, a scsi_debug SAN of LUNS x 4 paths, and the benchmark's
# multipath.conf. Source it after tests/vm/lib.sh with LUNS set.
BIN=$REPO/target/release
BC=$BIN/examples/bench_client
[ -x "$BIN/mpathd" ] && [ -x "$BC" ] || fail "release build missing (cargo build --release --bins --example bench_client)"

t0=$SECONDS
SAN_WAIT_SECS=1200 san_scsi_debug_active "$LUNS" 4 || fail "SAN set-up failed"
udev_settle 900
log "SAN: $(san_paths | wc -l) paths in $((SECONDS - t0)) s"
mkdir -p /etc/multipath
cat >/etc/multipath.conf <<'EOF'
defaults {
	find_multipaths yes
	user_friendly_names no
	polling_interval 5
}
blacklist {
	devnode "^(sr|vd|loop|ram)"
}
EOF

# The A/B scripts' turns: the new build alone, or base, new, new, base when
# target/release/mpathd-base holds the other build, after a first turn
# that claims the SAN's paths (udev's database keeps the claim, so only
# that turn pays udev for it: compare the turns after it). A script that
# sets TURNS first keeps its own (a turn may also be Debian's multipathd).
if [ -z "${TURNS:-}" ]; then
    TURNS="new"
    [ -x "$BIN/mpathd-base" ] && TURNS="new base new new base"
fi
binary_of() {
    case "$1" in
    base) echo "$BIN/mpathd-base" ;;
    new) echo "$BIN/mpathd" ;;
    multipathd) command -v multipathd ;;
    esac
}
