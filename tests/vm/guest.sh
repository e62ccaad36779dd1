#!/bin/bash
# Runs inside the Debian guest as root, systemd being PID 1 (tests/vm/run.sh puts it on the
# payload disk as `run`; the image's runner starts it). It installs avwap exactly as
# dist/systemd/INSTALL.md tells a non-NixOS operator, plus ONE test-only drop-in, then runs the
# shared scenario nix/tests/scenario.sh and leaves everything for the host in $RESULTS.
#
# Then the production scenario tests/vm/paper.sh (alpaca-paper against the test-only fake
# Alpaca in the guest). SCENARIO_PARTS (default "sim paper") picks the parts, for development.
#
# Payload layout (/vmtest): bin/avwap-{scan,execution,gate,check}, bin/fake_alpaca (test-only,
# examples/fake_alpaca.rs), dist/ (= dist/systemd/), paper-units/ (the units rendered with
# INSTALL.md's paper recipe), examples/avwap.toml, scenario.sh (= nix/tests/scenario.sh),
# paper.sh (= tests/vm/paper.sh), env (scenario variables).
#
# The test-only drop-in, and why it is the only one:
#   scan.service.d/50-vmtest-synthetic.conf  ExecStart=avwap-scan --provider synthetic
#   The shipped scan reads the bar store (--provider store). On a fresh host it is empty, and it
#   cannot be filled with current bars offline, so the scan would fail with exit 13 (no data).
#   The synthetic provider (a seeded market ending at the previous session) writes a real
#   watchlist for "today" whatever the guest clock says. Everything else is as shipped.
set -u
P=/vmtest
R=${RESULTS:-/results}
mkdir -p "$R"

say() { printf '# [guest %s] %s\n' "$(date -u +%T)" "$*"; }
die() {
  say "FAILED: $*"
  journalctl -b --no-pager -o short-iso-precise >"$R/journal.txt" 2>&1
  exit 1
}

systemctl --version | head -n1 >"$R/systemd-version.txt"
say "$(cat "$R/systemd-version.txt"); $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release); kernel $(uname -r); clock $(date -u '+%F %T UTC')"

# --- dist/systemd/INSTALL.md, steps 1-4 ------------------------------------------------------
say "1. binaries -> /usr/local/bin"
install -m 0755 "$P"/bin/avwap-scan "$P"/bin/avwap-execution "$P"/bin/avwap-gate "$P"/bin/avwap-check \
  /usr/local/bin/ || die "install binaries"

say "2. user and group (sysusers)"
install -D -m 0644 "$P/dist/avwap.sysusers.conf" /etc/sysusers.d/avwap.conf || die "install sysusers.d"
systemd-sysusers /etc/sysusers.d/avwap.conf || die "systemd-sysusers"
id avwap || die "no avwap user"

say "3. configuration"
install -d -m 0755 /etc/avwap
install -m 0644 "$P/examples/avwap.toml" /etc/avwap/avwap.toml || die "install avwap.toml"

say "4. units"
install -m 0644 "$P"/dist/*.service "$P"/dist/*.timer /etc/systemd/system/ || die "install units"
# test-only, see the header
install -d /etc/systemd/system/scan.service.d
cat >/etc/systemd/system/scan.service.d/50-vmtest-synthetic.conf <<'EOF'
# Test-only (tests/vm/guest.sh): no bar store offline, so scan synthetic data.
[Service]
ExecStart=
ExecStart=/usr/local/bin/avwap-scan --provider synthetic
EOF
systemctl daemon-reload || die "daemon-reload"
systemctl enable --now scan.timer execution-restart.timer || die "enable timers"
systemctl enable execution.service || die "enable execution.service"

# The installed units are the shipped files, byte for byte.
for f in "$P"/dist/*.service "$P"/dist/*.timer; do
  cmp -s "$f" "/etc/systemd/system/$(basename "$f")" || die "$(basename "$f") differs from dist/systemd"
done
systemctl cat execution.service scan.service scan.timer execution-restart.service \
  execution-restart.timer >"$R/units.txt" 2>&1
# Real systemd's own opinion of the installed units (informational; .ci/deploy-checks gates it).
systemd-analyze verify --man=no /etc/systemd/system/execution.service /etc/systemd/system/scan.service \
  /etc/systemd/system/scan.timer /etc/systemd/system/execution-restart.service \
  /etc/systemd/system/execution-restart.timer >"$R/verify.txt" 2>&1
say "systemd-analyze verify: rc=$? $(wc -l <"$R/verify.txt") line(s) of output"

# --- the shared scenario ---------------------------------------------------------------------
set -a
# shellcheck disable=SC1091
[ -f "$P/env" ] && . "$P/env"
set +a
rc=0
: >"$R/scenario.log"
case " ${SCENARIO_PARTS:-sim paper} " in
  *" sim "*)
    say "scenario: bash nix/tests/scenario.sh"
    bash "$P/scenario.sh" 2>&1 | tee "$R/scenario.log"
    rc=${PIPESTATUS[0]}
    say "scenario exit status $rc"
    ;;
esac
: >"$R/paper.log"
case " ${SCENARIO_PARTS:-sim paper} " in
  *" paper "*)
    say "production scenario: bash tests/vm/paper.sh"
    PAPER_DIR=$P bash "$P/paper.sh" 2>&1 | tee "$R/paper.log"
    prc=${PIPESTATUS[0]}
    say "production scenario exit status $prc"
    [ "$prc" = 0 ] || rc=$prc
    ;;
esac
# One result file for both parts: their RESULT lines, one SUMMARY over all of them.
cat "$R/scenario.log" "$R/paper.log" | grep -E '^RESULT ' >"$R/results.txt"
printf 'SUMMARY passed=%s failed=%s\n' "$(grep -c ' status=pass ' "$R/results.txt")" \
  "$(grep -c ' status=fail ' "$R/results.txt")" >>"$R/results.txt"

# --- what the host keeps ---------------------------------------------------------------------
/usr/local/bin/avwap-check --config /etc/avwap/avwap.toml >"$R/avwap-check.txt" 2>&1
for u in execution.service scan.service scan.timer execution-restart.service execution-restart.timer fake-alpaca.service; do
  printf '### %s\n' "$u"
  systemctl show "$u"
done >"$R/units-show.txt" 2>&1
TZ=UTC systemctl list-timers --all --no-pager >"$R/timers.txt" 2>&1
journalctl -b --no-pager -o short-iso-precise >"$R/journal.txt" 2>&1
journalctl -b --no-pager -o short-monotonic -u execution.service -u scan.service \
  -u execution-restart.service -u scan.timer -u execution-restart.timer -u 'avwap-*' \
  -u fake-alpaca.service >"$R/journal-avwap.txt" 2>&1
cp /root/webhook-alerts.log "$R/webhook-alerts.txt" 2>/dev/null
exit "$rc"
