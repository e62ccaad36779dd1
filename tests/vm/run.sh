#!/usr/bin/env bash
# Real-systemd VM test: the deployment scenario (nix/tests/scenario.sh) in Debian guests whose
# PID 1 is systemd, on the units from dist/systemd/ installed as dist/systemd/INSTALL.md says,
# on two systemd generations one after the other: Debian 12 bookworm (systemd 252) and
# Debian 13 trixie (systemd 257). Called by .ci/run after the release build; runnable alone as
# root:
#
#   cargo build --release --bins && bash tests/vm/run.sh
#
# Steps: install qemu-system-x86 + debootstrap if missing (apt) -> per suite: build or reuse
# the guest image (tests/vm/image.sh, cached per suite) -> payload disk (release binaries,
# dist/systemd/, examples/avwap.toml, nix/tests/scenario.sh, tests/vm/guest.sh) -> boot under
# QEMU/TCG with a hard timeout -> results disk back into $AVWAP_VM_OUT/<suite> -> verdict.
#
# Exit 0 only if, for EVERY suite, the scenario's SUMMARY says failed=0 and at least
# $AVWAP_VM_MIN_CHECKS checks passed (among them the guest's systemd major version). A guest
# that hangs is killed at $AVWAP_VM_TIMEOUT and that suite fails with the end of its serial
# log; the other suite still runs.
#
# Environment (all optional):
#   AVWAP_VM_SUITES      Debian suites to run, in order (default "bookworm trixie"); each is
#                        expected to run its systemd major (bookworm 252, trixie 257)
#   AVWAP_VM_CACHE       image cache (default /var/tmp/avwap-vm-cache); an entry per suite and
#                        SHA-256 of tests/vm/image.sh + suite, older entries of the suite are
#                        removed. Empty it for a cold run.
#   AVWAP_VM_OUT         results (default target/vm-results): summary.txt (one line per suite),
#                        and per suite <suite>/: results.txt (RESULT/SUMMARY lines),
#                        scenario.log, journal.txt (whole guest journal), journal-avwap.txt,
#                        units.txt, units-show.txt, avwap-check.txt, systemd-version.txt,
#                        serial.log, run.txt
#   AVWAP_VM_BIN_DIR     where avwap-{scan,execution,gate,check} are (default target/release)
#   AVWAP_VM_TIMEOUT     hard limit in seconds for each VM, boot to power-off (default 2400)
#   AVWAP_VM_SMP / AVWAP_VM_MEM   vCPUs (default 2) / MiB (default 1024)
#   AVWAP_VM_MIN_CHECKS  fewest passed checks accepted per guest (default: what the scenario
#                        has today)
#   AVWAP_VM_RTC         guest clock at boot (default 2026-10-30T09:00:00, Fri 05:00 New York;
#                        see the README about systemd's build date)
#   AVWAP_VM_MIRROR      Debian mirror for debootstrap and the host's backports (default: the
#                        host's own apt configuration, see tests/vm/image.sh --mirror)
#   SCENARIO_*           passed on to nix/tests/scenario.sh inside the guest
#
# KVM is not used: /dev/kvm on these machines is nested PVM, on which a stock Debian kernel
# hangs. TCG (software emulation) boots the guest in about 15-25 s.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SUITES=${AVWAP_VM_SUITES:-bookworm trixie}
CACHE=${AVWAP_VM_CACHE:-/var/tmp/avwap-vm-cache}
OUT_ROOT=${AVWAP_VM_OUT:-$REPO/target/vm-results}
BIN_DIR=${AVWAP_VM_BIN_DIR:-$REPO/target/release}
TIMEOUT=${AVWAP_VM_TIMEOUT:-2400}
SMP=${AVWAP_VM_SMP:-2}
MEM=${AVWAP_VM_MEM:-1024}
MIN_CHECKS=${AVWAP_VM_MIN_CHECKS:-52}
RTC=${AVWAP_VM_RTC:-2026-10-30T09:00:00}
MIRROR=$(bash "$REPO/tests/vm/image.sh" --mirror)
BINARIES=(avwap-scan avwap-execution avwap-gate avwap-check)
# Test-only: the fake Alpaca of tests/alpaca/fake_alpaca as a program (examples/fake_alpaca.rs).
FAKE=${AVWAP_VM_FAKE:-$BIN_DIR/examples/fake_alpaca}
START=$SECONDS

SUITE=
log() { printf '[vm%s %(%H:%M:%S)T +%ss] %s\n' "${SUITE:+ $SUITE}" -1 "$((SECONDS - START))" "$*"; }
die() {
  log "FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (apt-get, debootstrap)"
for b in "${BINARIES[@]}"; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b missing: cargo build --release --bins"
done
[ -f "$REPO/nix/tests/scenario.sh" ] || die "nix/tests/scenario.sh missing"
[ -x "$FAKE" ] || die "$FAKE missing: cargo build --release --example fake_alpaca"
command -v nix-instantiate >/dev/null 2>&1 || die "nix-instantiate missing (Debian nix-bin): tools/render-units renders the paper units"
# The paper units, rendered as dist/systemd/INSTALL.md's paper recipe renders them (the scan's
# provider follows the mode), with the alert webhook: the alert units come with it.
PAPER_UNITS=$(mktemp -d /var/tmp/avwap-vm-units.XXXXXX)
trap 'rm -rf "$PAPER_UNITS"' EXIT
python3 "$REPO/tools/render-units" --out "$PAPER_UNITS" --set mode=alpaca-paper \
  --credential alpaca-key-id=/etc/avwap/credentials/alpaca-key-id \
  --credential alpaca-secret-key=/etc/avwap/credentials/alpaca-secret-key \
  --credential alert-webhook-url=/etc/avwap/credentials/alert-webhook-url >/dev/null ||
  die "tools/render-units (paper recipe) failed"
[ -n "$MIRROR" ] || die "no Debian archive in the host's apt sources; set AVWAP_VM_MIRROR"
# The systemd major version each suite ships (checked in the guest by the scenario).
systemd_major() {
  case $1 in
    bookworm) echo 252 ;;
    trixie) echo 257 ;;
    *) echo "" ;;
  esac
}
for s in $SUITES; do
  [ -n "$(systemd_major "$s")" ] || die "unknown suite $s (known: bookworm trixie)"
done

# ---------------------------------------------------------------------------------------------
# Tools. Retries cover the mirror only (apt-get update/install); nothing else is retried.
retry() { # retry N CMD...
  local n=$1 i=1
  shift
  until "$@"; do
    [ "$i" -ge "$n" ] && return 1
    log "attempt $i of $n failed: $*; retrying in 15 s"
    i=$((i + 1))
    sleep 15
  done
}

install_tools() {
  local need=() qemu_pkgs=() apt_dir
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
  command -v timeout >/dev/null 2>&1 || need+=(coreutils)
  command -v flock >/dev/null 2>&1 || need+=(util-linux)
  if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    # The machine image ships qemu-utils from bookworm-backports (10.x); bookworm's own
    # qemu-system-x86 (7.2) Breaks it. So take qemu-system from bookworm-backports too, each
    # package named with its release (`-t bookworm-backports` would also upgrade e2fsprogs,
    # debootstrap, ... to backports).
    if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '~bpo12'; then
      qemu_pkgs=(qemu-system-x86/bookworm-backports qemu-system-common/bookworm-backports
        qemu-system-data/bookworm-backports seabios/bookworm-backports)
    else
      qemu_pkgs=(qemu-system-x86)
    fi
  fi
  [ ${#need[@]} -gt 0 ] || [ ${#qemu_pkgs[@]} -gt 0 ] || return 0
  log "installing: ${need[*]} ${qemu_pkgs[*]}"
  # A private apt configuration: the machine's own sources plus bookworm-backports, with its
  # own package lists, so /etc/apt is left exactly as it was.
  apt_dir=$(mktemp -d /var/tmp/avwap-vm-apt.XXXXXX)
  chmod 0755 "$apt_dir" # apt downloads as the _apt user
  mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial"
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$apt_dir/parts/00-sources.list"
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$apt_dir/parts/"
  done
  cat >"$apt_dir/parts/zz-avwap-vm-backports.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local opts=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$apt_dir/parts"
    -o "Dir::State::lists=$apt_dir/lists" -o "Acquire::Retries=3")
  export DEBIAN_FRONTEND=noninteractive
  retry 3 apt-get "${opts[@]}" update -qq || die "apt-get update failed"
  retry 3 apt-get "${opts[@]}" install -y -qq --no-install-recommends \
    "${need[@]}" "${qemu_pkgs[@]}" >/dev/null || die "apt-get install ${need[*]} ${qemu_pkgs[*]} failed"
  rm -rf "$apt_dir"
}

log "tools"
install_tools
log "$(qemu-system-x86_64 --version | head -n1); debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"

# ---------------------------------------------------------------------------------------------
# One guest: image, disks, boot, results, verdict. Run in a subshell: its `die` fails this
# suite only, and its EXIT trap cleans up its own QEMU and scratch files.
guest() {
  SUITE=$1
  START=$SECONDS
  OUT=$OUT_ROOT/$SUITE
  # ---------------------------------------------------------------------------------------------
  # The image, cached by the SHA-256 of its recipe.
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -w 3600 9 || die "could not lock $CACHE"
  KEY=$({ cat "$REPO/tests/vm/image.sh"; echo "suite=$SUITE"; } | sha256sum | cut -c1-16)
  IMG=$CACHE/image-$SUITE-$KEY
  image_s=0
  if [ -f "$IMG/complete" ] && [ -f "$IMG/base.img" ] && [ -f "$IMG/vmlinuz" ] && [ -f "$IMG/initrd.img" ]; then
    log "image: cached $IMG (built $(cat "$IMG/complete"))"
  else
    log "image: building $IMG (tests/vm/image.sh, key $KEY)"
    rm -rf "$IMG" "$IMG.tmp"
    t0=$SECONDS
    bash "$REPO/tests/vm/image.sh" "$IMG.tmp" "$SUITE" || die "building the $SUITE guest image failed"
    date -u +%FT%TZ >"$IMG.tmp/complete"
    mv "$IMG.tmp" "$IMG"
    image_s=$((SECONDS - t0))
    log "image: built in $image_s s"
    for old in "$CACHE/image-$SUITE"-*; do
      [ "$old" = "$IMG" ] || { log "image: removing stale cache entry $old"; rm -rf "$old"; }
    done
  fi
  exec 9>&-

  # ---------------------------------------------------------------------------------------------
  # Payload and results disks.
  rm -rf "$OUT"
  mkdir -p "$OUT"
  WORK=$(mktemp -d /var/tmp/avwap-vm-run.XXXXXX)
  QEMU_PID=
  TAIL_PID=
  # shellcheck disable=SC2317  # called by the EXIT trap
  cleanup() {
    [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null
    [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null
    rm -rf "$WORK"
  }
  trap cleanup EXIT

  P=$WORK/payload
  mkdir -p "$P/bin" "$P/dist" "$P/examples" "$P/paper-units"
  for b in "${BINARIES[@]}"; do cp "$BIN_DIR/$b" "$P/bin/"; done
  cp "$FAKE" "$P/bin/fake_alpaca"
  cp "$PAPER_UNITS"/* "$P/paper-units/"
  cp "$REPO/tests/vm/paper.sh" "$P/paper.sh"
  cp "$REPO"/dist/systemd/*.service "$REPO"/dist/systemd/*.timer "$REPO/dist/systemd/avwap.sysusers.conf" "$P/dist/"
  cp "$REPO/examples/avwap.toml" "$P/examples/"
  cp "$REPO/nix/tests/scenario.sh" "$P/scenario.sh"
  install -m 0755 "$REPO/tests/vm/guest.sh" "$P/run"
  # The guest kills its payload a little before the host kills the VM, so that a hung scenario
  # still brings back its journal.
  echo $((TIMEOUT > 300 ? TIMEOUT - 150 : TIMEOUT * 3 / 4)) >"$P/timeout"
  {
    echo "SCENARIO_SYSTEMD_MAJOR='$(systemd_major "$SUITE")'"
    env | grep -E '^SCENARIO_[A-Z_]+=' | sed "s/=\(.*\)/='\1'/" || true
  } >"$P/env"
  size=$(($(du -sm "$P" | cut -f1) + 64))
  mkfs.ext4 -q -F -L payload -d "$P" "$WORK/payload.img" "${size}M"
  truncate -s 256M "$WORK/results.img"

  # ---------------------------------------------------------------------------------------------
  log "boot: QEMU/TCG, $SMP vCPU, $MEM MiB, guest clock from $RTC, hard timeout ${TIMEOUT}s"
  : >"$OUT/serial.log"
  t0=$SECONDS
  qemu_rc=0
  timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -smp "$SMP" -m "$MEM" \
    -display none -monitor none -nic none -no-reboot \
    -serial "file:$OUT/serial.log" \
    -rtc "base=$RTC,clock=host" \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 loglevel=4 panic=1" \
    -drive "file=$IMG/base.img,if=virtio,format=raw,snapshot=on" \
    -drive "file=$WORK/payload.img,if=virtio,format=raw,readonly=on" \
    -drive "file=$WORK/results.img,if=virtio,format=raw" &
  QEMU_PID=$!
  # The guest's console, live (tail ends by itself within a second of qemu).
  tail -n +1 -F --pid="$QEMU_PID" "$OUT/serial.log" 2>/dev/null | sed -u 's/\x1b\[[0-9;]*m//g; s/^/  vm| /' &
  TAIL_PID=$!
  wait "$QEMU_PID" || qemu_rc=$?
  QEMU_PID=
  vm_s=$((SECONDS - t0))
  wait "$TAIL_PID" 2>/dev/null || true
  TAIL_PID=
  log "qemu exited with status $qemu_rc after ${vm_s}s"

  # ---------------------------------------------------------------------------------------------
  # Results.
  serial_tail() {
    echo "----- last 60 lines of the serial log ($OUT/serial.log) -----"
    tail -n 60 "$OUT/serial.log"
    echo "-----"
  }
  if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    serial_tail
    die "the VM did not finish within ${TIMEOUT}s (hung guest); killed"
  fi
  [ "$qemu_rc" = 0 ] || { serial_tail; die "qemu failed with status $qemu_rc"; }
  # -m: the files carry the guest's (moved) clock as mtime; take the host's instead.
  if ! tar -C "$OUT" -xmf "$WORK/results.img" 2>/dev/null; then
    serial_tail
    die "the guest wrote no results (did the runner start? see the serial log)"
  fi
  guest_rc=$(cat "$OUT/rc" 2>/dev/null || echo missing)
  {
    echo "suite=$SUITE qemu_status=$qemu_rc vm_seconds=$vm_s image_build_seconds=$image_s guest_rc=$guest_rc image=$IMG"
    echo "systemd=$(cat "$OUT/systemd-version.txt" 2>/dev/null)"
    echo "total_seconds=$((SECONDS - START))"
  } >"$OUT/run.txt"

  echo
  echo "=== real-systemd VM scenario, $SUITE ($(cat "$OUT/systemd-version.txt" 2>/dev/null)): results ($OUT/results.txt)"
  [ -s "$OUT/results.txt" ] && cat "$OUT/results.txt"
  summary=$(grep '^SUMMARY ' "$OUT/results.txt" 2>/dev/null | tail -n1 || true)
  passed=$(sed -n 's/^SUMMARY passed=\([0-9]*\) failed=\([0-9]*\)$/\1/p' <<<"$summary")
  failed=$(sed -n 's/^SUMMARY passed=\([0-9]*\) failed=\([0-9]*\)$/\2/p' <<<"$summary")
  results_pass=$(grep -c '^RESULT .* status=pass ' "$OUT/results.txt" 2>/dev/null || true)
  results_fail=$(grep -c '^RESULT .* status=fail ' "$OUT/results.txt" 2>/dev/null || true)
  echo "=== guest journal: $OUT/journal.txt ($(wc -l <"$OUT/journal.txt" 2>/dev/null || echo 0) lines), avwap units: $OUT/journal-avwap.txt"
  if [ -z "$summary" ]; then
    serial_tail
    die "no SUMMARY line: the scenario did not finish (guest rc=$guest_rc)"
  fi
  if [ "$failed" != 0 ] || [ "$results_fail" != 0 ]; then
    grep '^RESULT .* status=fail ' "$OUT/results.txt" | sed 's/^/FAILED: /'
    echo "--- the avwap units' journal, last 40 lines ($OUT/journal-avwap.txt)"
    tail -n 40 "$OUT/journal-avwap.txt" 2>/dev/null || true
    die "$summary"
  fi
  [ "$passed" = "$results_pass" ] || die "SUMMARY says passed=$passed but $results_pass RESULT lines passed"
  [ "$passed" -ge "$MIN_CHECKS" ] || die "only $passed checks ran and passed, expected at least $MIN_CHECKS"
  [ "$guest_rc" = 0 ] || die "the scenario exited with status $guest_rc"
  log "PASS: $summary (VM ${vm_s}s, total $((SECONDS - START))s)"
  echo "vm-scenario $SUITE: $passed passed, $failed failed"
}

rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT"
verdict=0
for suite in $SUITES; do
  t_suite=$SECONDS
  # In the background, not in an `if`: a condition context would switch off `set -e` inside.
  (guest "$suite") &
  if wait "$!"; then st=pass; else st=fail verdict=1; fi
  printf 'suite=%s status=%s systemd="%s" checks="%s" seconds=%s\n' "$suite" "$st" \
    "$(cat "$OUT_ROOT/$suite/systemd-version.txt" 2>/dev/null)" \
    "$(grep '^SUMMARY ' "$OUT_ROOT/$suite/results.txt" 2>/dev/null | tail -n1)" \
    "$((SECONDS - t_suite))" >>"$OUT_ROOT/summary.txt"
done
echo
echo "=== real-systemd VM scenario, all guests ($OUT_ROOT/summary.txt), $((SECONDS - START))s"
cat "$OUT_ROOT/summary.txt"
[ "$verdict" = 0 ] || die "at least one guest failed: $(grep -c ' status=fail ' "$OUT_ROOT/summary.txt") of $(wc -l <"$OUT_ROOT/summary.txt")"
