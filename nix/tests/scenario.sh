#!/usr/bin/env bash
# The avwap deployment scenario: run as root inside a guest whose PID 1 is systemd and which has
# the five avwap units installed (NixOS: services.avwap with scanProvider = "synthetic", see
# nix/tests/vm.nix; Debian: dist/systemd/ as INSTALL.md says plus a drop-in for the synthetic
# scan provider, see tests/vm/guest.sh). Both VM tests run THIS file.
#
# It reads every policy value (state dir, user, binaries, restart delay, start limit, stop
# timeout) from the loaded units with `systemctl show`, so it never carries a second copy of
# nix/units.nix. Schedules are checked against hard-coded UTC instants, never against a second
# computation with the same time zone database.
#
# Output, one line per check, machine-readable:
#   RESULT name=<id> status=pass|fail detail=<free text to end of line>
# then
#   SUMMARY passed=<n> failed=<m>
#   <n> passed, <m> failed
# Exit status 0 only if no check failed. Every wait is bounded. Lines starting with '#' are log.
#
# Sections, in this order (the clock only ever moves forward when the guest boots before
# 2026-10-30, as tests/vm/run.sh does; a backward first jump, e.g. in the NixOS VM, is fine
# because the timers are stopped while the clock is set, see timers_start):
#   1. timers: 08:30 scan / 08:40 restart on Fri 2026-10-30 -> Mon 2026-11-02 (fall back) and
#      Fri 2027-03-12 -> Mon 2027-03-15 (spring forward), nothing on Saturday or Sunday
#   2. at SCENARIO_CLOCK (a weekday session): the gate with no / a stale watchlist, the scan
#      starting execution, avwap-check healthy, one process, the restart helper, the watchdog,
#      SIGKILL and the restart delay, repeated crashes and the start limit, the kill switch,
#      a clean stop, and the timers' next elapse
#
# Environment:
#   SCENARIO_CLOCK   UTC time for section 2 (default "2030-06-12 14:00:00", a Wednesday NYSE
#                    session, 10:00 New York), or "keep" to leave the clock alone (the harness
#                    then must boot the guest on a weekday session; section 1 is skipped)
#   SCENARIO_DST     1 (default) runs section 1, 0 skips it
#   SCENARIO_STARTUP_ALLOWANCE  seconds allowed for avwap-execution to reach READY=1 (default 60)
#
# What it changes in the guest: the clock, the watchlist and KILL_SWITCH in the state
# directory, the timers' last-trigger times, and it stops execution.service at the end.
#
# systemd behaviour this relies on (measured with 252 and 257 in tests/vm/): a realtime timer whose
# elapse the clock jumps over fires once at once ("catch-up"), also when it is started after
# the jump; so every clock change while the timers run goes to a time with no schedule point
# left behind, and after (re)starting them the catch-up run is let settle before anything is
# measured.

set -u
export LC_ALL=C

CLOCK=${SCENARIO_CLOCK:-2030-06-12 14:00:00}
DST=${SCENARIO_DST:-1}
STARTUP_ALLOWANCE=${SCENARIO_STARTUP_ALLOWANCE:-60}
EXEC=execution.service
TIMERS=(scan.timer execution-restart.timer)
PASSED=0
FAILED=0

log() { printf '%s\n' "# [$(date -u '+%F %T')] $*"; }

result() { # name status detail...
  local name=$1 status=$2
  shift 2
  printf 'RESULT name=%s status=%s detail=%s\n' "$name" "$status" "$*"
  if [ "$status" = pass ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

check() { # name condition-exit-status detail...
  local name=$1 ok=$2
  shift 2
  if [ "$ok" = 0 ]; then result "$name" pass "$@"; else result "$name" fail "$@"; fi
}

finish() {
  printf 'SUMMARY passed=%s failed=%s\n' "$PASSED" "$FAILED"
  printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" = 0 ]
  exit $?
}

# Monotonic milliseconds (immune to the clock changes below).
mono_ms() {
  local up
  read -r up _ </proc/uptime
  echo $((${up%.*} * 1000 + 10#${up#*.} * 10))
}

prop() { systemctl show -p "$2" --value "$1"; }

# A realtime timestamp property as epoch seconds; 0 when unset ("", "n/a").
prop_epoch() {
  local raw
  raw=$(TZ=UTC systemctl show -p "$2" --value "$1")
  case $raw in "" | n/a | 0) echo 0 ;; *) date -u -d "${raw#* }" +%s 2>/dev/null || echo 0 ;; esac
}

utc() { date -u -d "@$1" '+%a %F %T UTC'; }
ny() { TZ=America/New_York date -d "@$1" '+%a %F %H:%M:%S %Z'; }
epoch() { date -u -d "$1 UTC" +%s; }

# "1min 30s", "10s", "500ms", "infinity" -> whole seconds (rounded up; infinity -> 999999).
span_s() {
  local total_ms=0 part n unit
  [ "$1" = infinity ] && { echo 999999; return; }
  for part in $1; do
    n=${part%%[a-z]*}
    unit=${part#"$n"}
    case $unit in
      h) total_ms=$((total_ms + n * 3600000)) ;;
      min) total_ms=$((total_ms + n * 60000)) ;;
      s | "") total_ms=$((total_ms + n * 1000)) ;;
      ms) total_ms=$((total_ms + n)) ;;
      us) ;;
      *) echo "span_s: cannot parse $1" >&2; echo 0; return ;;
    esac
  done
  echo $(((total_ms + 999) / 1000))
}

# Wait until `systemctl show -p PROP --value UNIT` equals one of VALUES; bounded.
# wait_prop UNIT PROP TIMEOUT_S VALUE... ; prints the final value, returns 0 on match.
wait_prop() {
  local unit=$1 p=$2 timeout=$3 v want deadline
  shift 3
  deadline=$(($(mono_ms) + timeout * 1000))
  while :; do
    v=$(prop "$unit" "$p")
    for want in "$@"; do [ "$v" = "$want" ] && { echo "$v"; return 0; }; done
    [ "$(mono_ms)" -ge "$deadline" ] && { echo "$v"; return 1; }
    sleep 0.5
  done
}

# Wait until a realtime timestamp property is >= EPOCH; prints its epoch (0 if unset).
wait_epoch_ge() { # unit prop epoch timeout_s
  local deadline v
  deadline=$(($(mono_ms) + $4 * 1000))
  while :; do
    v=$(prop_epoch "$1" "$2")
    [ "$v" -ge "$3" ] && { echo "$v"; return 0; }
    [ "$(mono_ms)" -ge "$deadline" ] && { echo "$v"; return 1; }
    sleep 0.5
  done
}

# Sleep until the (jumping) wall clock reaches EPOCH, bounded by TIMEOUT_S of monotonic time.
sleep_until_clock() { # epoch timeout_s
  local deadline
  deadline=$(($(mono_ms) + $2 * 1000))
  while [ "$(date +%s)" -lt "$1" ] && [ "$(mono_ms)" -lt "$deadline" ]; do sleep 0.5; done
}

set_clock() { # epoch
  date -u -s "@$1" >/dev/null || log "date -s @$1 failed"
}

# Lines of the execution unit's journal matching an extended regexp (case-insensitive).
journal_count() { journalctl -q -u "$EXEC" -o cat --no-pager | grep -ciE -- "$1"; }
runs() { journalctl -q -u "$1" -o cat --no-pager | grep -c '^Starting '; }

ny_date() { TZ=America/New_York date "$@" +%F; }
secs() { echo "$(($1 / 1000)).$(($1 % 1000 / 100))s"; } # milliseconds -> "12.3s"

# Restart both timers at a new clock. systemd 252 keeps a timer's last trigger in memory across
# stop/start, 257 reloads it from the Persistent= stamp; either way a timer started after a
# forward clock jump over its schedule fires once at once ("catch-up": measured on both, at
# the same points of this scenario). Callers set the clock before 08:30 New York, let that
# catch-up run settle, and only then look at the schedule.
timers_stop() { systemctl stop "${TIMERS[@]}"; }
timers_start() {
  systemctl start "${TIMERS[@]}"
  sleep 2
  settle_units
}
# Wait (bounded) until no job is queued for the avwap services and the scan and the restart
# helper are idle (a timer's or OnSuccess='s start job may still be queued right after a change).
settle_units() {
  local deadline
  deadline=$(($(mono_ms) + 1200 * 1000))
  while [ "$(mono_ms)" -lt "$deadline" ]; do
    if ! systemctl list-jobs --no-legend --no-pager 2>/dev/null | grep -qE ' (scan|execution|execution-restart)\.service '; then
      case "$(prop scan.service ActiveState) $(prop execution-restart.service ActiveState)" in
        *activating*) ;; # also deactivating
        *) return 0 ;;
      esac
    fi
    sleep 0.5
  done
  log "settle_units: still busy after 1200 s"
}

# ---------------------------------------------------------------------------------------------
log "== preflight"
if [ "$(id -u)" != 0 ] || [ ! -d /run/systemd/system ]; then
  result preflight fail "must run as root on a host booted with systemd"
  finish
fi
missing=""
for u in execution.service scan.service scan.timer execution-restart.service execution-restart.timer; do
  [ "$(prop "$u" LoadState)" = loaded ] || missing="$missing $u"
done
if [ -n "$missing" ]; then
  result units-loaded fail "not loaded:$missing"
  finish
fi
result units-loaded pass "all five units are loaded"

STATE_DIR=/var/lib/avwap
UNIT_ENV=()
for kv in $(prop "$EXEC" Environment); do
  UNIT_ENV+=("$kv")
  case $kv in AVWAP_STATE_DIR=*) STATE_DIR=${kv#AVWAP_STATE_DIR=} ;; esac
done
exec_path() { prop "$1" ExecStart | sed -n 's/.*path=\([^ ;]*\).*/\1/p' | head -n1; }
BIN_DIR=$(dirname "$(exec_path "$EXEC")")
SCAN_BIN=$(exec_path scan.service)
SVC_USER=$(prop "$EXEC" User)
SVC_GROUP=$(prop "$EXEC" Group)
RESTART_S=$(span_s "$(prop "$EXEC" RestartUSec)")
BURST=$(prop "$EXEC" StartLimitBurst)
STOP_TIMEOUT_S=$(span_s "$(prop "$EXEC" TimeoutStopUSec)")
WATCHLIST=$STATE_DIR/daily_candidates.csv
# The systemd generation this run is about: SCENARIO_SYSTEMD_MAJOR (tests/vm/run.sh sets it per
# guest: bookworm 252, trixie 257) or, unset, any systemd this scenario knows (>= 252).
sd_version=$(systemctl --version | head -n1)
sd_major=$(sed -n 's/^systemd \([0-9][0-9]*\).*/\1/p' <<<"$sd_version")
if [ -n "${SCENARIO_SYSTEMD_MAJOR:-}" ]; then
  check systemd-version "$([ "$sd_major" = "$SCENARIO_SYSTEMD_MAJOR" ] && echo 0 || echo 1)" \
    "PID 1 is $sd_version (major ${sd_major:-unknown}, want $SCENARIO_SYSTEMD_MAJOR)"
else
  check systemd-version "$([ "${sd_major:-0}" -ge 252 ] && echo 0 || echo 1)" \
    "PID 1 is $sd_version (major ${sd_major:-unknown}, want >= 252)"
fi
log "state dir $STATE_DIR, binaries $BIN_DIR, user $SVC_USER:$SVC_GROUP, RestartSec ${RESTART_S}s, StartLimitBurst $BURST, TimeoutStopSec ${STOP_TIMEOUT_S}s"
log "systemd $(systemctl --version | head -n1)"
timedatectl set-ntp false >/dev/null 2>&1

# Run avwap-check / avwap-execution report like the units do (their environment).
avwap_check() { env "${UNIT_ENV[@]}" "$BIN_DIR/avwap-check" "$@"; }
# The decision log (the execution database) read as the service user, so that nothing in the
# state directory becomes root's.
report_json() {
  setpriv --reuid="$SVC_USER" --regid="$SVC_GROUP" --clear-groups \
    env "${UNIT_ENV[@]}" "$BIN_DIR/avwap-execution" report --json --date "$(ny_date)" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Section 1: the schedule on real systemd, across both DST changes.
#
# weekday_check LABEL SCAN_UTC RESTART_UTC NEXT_SCAN_UTC NEXT_RESTART_UTC
#   The clock is set 10 s before SCAN_UTC (08:30 New York); the scan must fire within 30 s of
#   it (an hour off = a DST error), execution must be restarted by the scan's OnSuccess= chain,
#   then the clock is set 10 s before RESTART_UTC (08:40) and execution must be restarted by
#   the restart timer. The next elapses must be the given instants.
weekday_check() {
  local label=$1 scan_e restart_e next_scan_e next_restart_e trig ok_ next started state s0 s1 r0 r1
  scan_e=$(epoch "$2")
  restart_e=$(epoch "$3")
  next_scan_e=$(epoch "$4")
  next_restart_e=$(epoch "$5")

  s0=$(runs scan.service)
  r0=$(runs execution-restart.service)
  set_clock $((scan_e - 10))
  trig=$(wait_epoch_ge scan.timer LastTriggerUSec "$scan_e" 90)
  sleep 1
  settle_units
  state=$(wait_prop "$EXEC" ActiveState $((STARTUP_ALLOWANCE + 30)) active)
  next=$(prop_epoch scan.timer NextElapseUSecRealtime)
  s1=$(runs scan.service)
  r1=$(runs execution-restart.service)
  ok_=$([ "$trig" -ge "$scan_e" ] && [ "$trig" -lt $((scan_e + 30)) ] && [ $((s1 - s0)) = 1 ] && [ $((r1 - r0)) = 1 ] &&
    [ "$(prop scan.service Result)" = success ] && [ "$next" = "$next_scan_e" ] && [ "$state" = active ] && echo 0 || echo 1)
  check "$label-scan-0830" "$ok_" \
    "scan.timer fired $( [ "$trig" -gt 0 ] && utc "$trig") = New York $( [ "$trig" -gt 0 ] && ny "$trig") (want $(utc "$scan_e")); scan ran $((s1 - s0)) time(s), Result=$(prop scan.service Result); its OnSuccess= ran execution-restart $((r1 - r0)) time(s), execution $state; next scan $( [ "$next" -gt 0 ] && utc "$next") = New York $( [ "$next" -gt 0 ] && ny "$next") (want $(utc "$next_scan_e"))"

  s0=$(runs scan.service)
  r0=$(runs execution-restart.service)
  set_clock $((restart_e - 10))
  trig=$(wait_epoch_ge execution-restart.timer LastTriggerUSec "$restart_e" 90)
  started=$(wait_epoch_ge "$EXEC" ExecMainStartTimestamp "$restart_e" $((STARTUP_ALLOWANCE + 30)))
  settle_units
  state=$(wait_prop "$EXEC" ActiveState $((STARTUP_ALLOWANCE + 30)) active)
  next=$(prop_epoch execution-restart.timer NextElapseUSecRealtime)
  s1=$(runs scan.service)
  r1=$(runs execution-restart.service)
  ok_=$([ "$trig" -ge "$restart_e" ] && [ "$trig" -lt $((restart_e + 30)) ] && [ $((r1 - r0)) = 1 ] && [ "$s1" = "$s0" ] &&
    [ "$started" -ge "$restart_e" ] && [ "$started" -lt $((restart_e + 30 + STARTUP_ALLOWANCE)) ] &&
    [ "$state" = active ] && [ "$next" = "$next_restart_e" ] && echo 0 || echo 1)
  check "$label-restart-0840" "$ok_" \
    "execution-restart.timer fired $( [ "$trig" -gt 0 ] && utc "$trig") = New York $( [ "$trig" -gt 0 ] && ny "$trig") (want $(utc "$restart_e")), ran $((r1 - r0)) time(s) (scan $((s1 - s0))); execution main process started $( [ "$started" -gt 0 ] && utc "$started"), $state; next restart $( [ "$next" -gt 0 ] && utc "$next") = New York $( [ "$next" -gt 0 ] && ny "$next") (want $(utc "$next_restart_e"))"
}

# weekend_check LABEL SAT_0830_UTC SUN_AFTER_0840_UTC
#   Saturday 08:29:50 New York: wait past 08:30 (25 s). Then jump to just after Sunday 08:40:
#   a timer with any elapse on Saturday or Sunday would fire at once (catch-up). Nothing may run.
weekend_check() {
  local label=$1 sat_e sun_e s0 r0 st0 ls0 lr0 s1 r1 st1 ls1 lr1 ns nr
  sat_e=$(epoch "$2")
  sun_e=$(epoch "$3")
  s0=$(runs scan.service)
  r0=$(runs execution-restart.service)
  st0=$(prop "$EXEC" ExecMainStartTimestampMonotonic)
  ls0=$(prop_epoch scan.timer LastTriggerUSec)
  lr0=$(prop_epoch execution-restart.timer LastTriggerUSec)
  set_clock $((sat_e - 10))
  sleep_until_clock $((sat_e + 15)) 60
  set_clock "$sun_e"
  sleep 10
  settle_units
  s1=$(runs scan.service)
  r1=$(runs execution-restart.service)
  st1=$(prop "$EXEC" ExecMainStartTimestampMonotonic)
  ls1=$(prop_epoch scan.timer LastTriggerUSec)
  lr1=$(prop_epoch execution-restart.timer LastTriggerUSec)
  ns=$(prop_epoch scan.timer NextElapseUSecRealtime)
  nr=$(prop_epoch execution-restart.timer NextElapseUSecRealtime)
  check "$label-weekend-quiet" "$([ "$s1" = "$s0" ] && [ "$r1" = "$r0" ] && [ "$st1" = "$st0" ] && [ "$ls1" = "$ls0" ] && [ "$lr1" = "$lr0" ] && echo 0 || echo 1)" \
    "clock through Saturday 08:30 ($(utc "$sat_e")) and on to $(ny "$sun_e"): scan ran $((s1 - s0)) time(s), execution-restart $((r1 - r0)) time(s), execution $([ "$st1" = "$st0" ] && echo 'not restarted' || echo RESTARTED); next scan $( [ "$ns" -gt 0 ] && ny "$ns"), next restart $( [ "$nr" -gt 0 ] && ny "$nr")"
}

if [ "$CLOCK" != keep ] && [ "$DST" = 1 ]; then
  log "== section 1: timers across the 2026 fall-back and the 2027 spring-forward"
  # 2026: EDT until Sun 2026-11-01 -> 08:30 New York = 12:30Z on Fri 10-30, 13:30Z on Mon 11-02.
  # The timers are (re)started at 08:00 New York; a catch-up run then (see timers_start)
  # settles before 08:30.
  timers_stop
  set_clock "$(epoch '2026-10-30 12:00:00')"
  s0=$(runs scan.service)
  timers_start
  ns=$(prop_epoch scan.timer NextElapseUSecRealtime)
  nr=$(prop_epoch execution-restart.timer NextElapseUSecRealtime)
  check timers-armed-2026-10-30 "$([ "$ns" = "$(epoch '2026-10-30 12:30:00')" ] && [ "$nr" = "$(epoch '2026-10-30 12:40:00')" ] && echo 0 || echo 1)" \
    "clock $(ny "$(date +%s)"): next scan $( [ "$ns" -gt 0 ] && utc "$ns"), next restart $( [ "$nr" -gt 0 ] && utc "$nr") (want 12:30:00Z / 12:40:00Z); catch-up scan runs when started: $(($(runs scan.service) - s0))"
  weekday_check dst-2026-fri '2026-10-30 12:30:00' '2026-10-30 12:40:00' '2026-11-02 13:30:00' '2026-11-02 13:40:00'
  weekend_check dst-2026 '2026-10-31 12:30:00' '2026-11-01 13:40:15'
  weekday_check dst-2026-mon '2026-11-02 13:30:00' '2026-11-02 13:40:00' '2026-11-03 13:30:00' '2026-11-03 13:40:00'

  # 2027: EST until Sun 2027-03-14 -> 08:30 New York = 13:30Z on Fri 03-12, 12:30Z on Mon 03-15.
  timers_stop
  set_clock "$(epoch '2027-03-12 13:00:00')"
  timers_start
  weekday_check dst-2027-fri '2027-03-12 13:30:00' '2027-03-12 13:40:00' '2027-03-15 12:30:00' '2027-03-15 12:40:00'
  weekend_check dst-2027 '2027-03-13 13:30:00' '2027-03-14 12:40:15'
  weekday_check dst-2027-mon '2027-03-15 12:30:00' '2027-03-15 12:40:00' '2027-03-16 12:30:00' '2027-03-16 12:40:00'
  TZ=UTC systemctl list-timers --all --no-pager "${TIMERS[@]}" | sed 's/^/# /'
else
  log "== section 1 skipped (SCENARIO_CLOCK=$CLOCK SCENARIO_DST=$DST)"
fi

# ---------------------------------------------------------------------------------------------
log "== section 2: prepare: clock set, timers restarted, execution stopped, no watchlist"
timers_stop
systemctl stop "$EXEC" execution-restart.service
settle_units
if [ "$CLOCK" != keep ]; then
  if date -u -s "$CLOCK" >/dev/null; then
    result clock-set pass "guest clock set to $(date -u '+%F %T UTC'), New York $(TZ=America/New_York date '+%a %F %H:%M %Z')"
  else
    result clock-set fail "date -u -s '$CLOCK' failed"
  fi
else
  log "clock kept: $(date -u '+%F %T UTC')"
fi
# Timers on (avwap-check wants them), a possible catch-up run settled, then a clean slate.
timers_start
systemctl stop "$EXEC" execution-restart.service
settle_units
systemctl reset-failed "$EXEC" scan.service execution-restart.service 2>/dev/null
if [ ! -d "$STATE_DIR" ]; then
  install -d -o "$SVC_USER" -g "$SVC_GROUP" -m 0750 "$STATE_DIR"
fi
rm -f "$WATCHLIST" "$STATE_DIR/KILL_SWITCH"

# ---------------------------------------------------------------------------------------------
# A closed gate: execution must not run, the gate's message must be in the journal, and the
# start attempts must stop after at most StartLimitBurst.
gate_blocks() { # case-name message-regexp
  local name=$1 msg=$2 c0 c1 c2 state result_ main_seen=0 bound deadline
  c0=$(journal_count "$msg")
  systemctl reset-failed "$EXEC" 2>/dev/null
  systemctl start --no-block "$EXEC"
  bound=$((BURST * (RESTART_S + 5) + 30))
  deadline=$(($(mono_ms) + bound * 1000))
  while :; do
    [ "$(prop "$EXEC" MainPID)" != 0 ] && main_seen=1
    state=$(prop "$EXEC" ActiveState)
    [ "$state" = failed ] && break
    [ "$(mono_ms)" -ge "$deadline" ] && break
    sleep 0.5
  done
  result_=$(prop "$EXEC" Result)
  sleep 1
  c1=$(journal_count "$msg")
  # Stay a few restart delays longer: nothing may start again by itself.
  sleep $((2 * RESTART_S + 2))
  c2=$(journal_count "$msg")
  [ "$(prop "$EXEC" MainPID)" != 0 ] && main_seen=1
  check "$name-not-running" "$([ "$state" = failed ] && [ "$main_seen" = 0 ] && echo 0 || echo 1)" \
    "ActiveState=$state Result=$result_ main process started: $([ $main_seen = 1 ] && echo yes || echo no)"
  check "$name-gate-message" "$([ $((c1 - c0)) -ge 1 ] && echo 0 || echo 1)" \
    "journal of $EXEC has $((c1 - c0)) new line(s) matching '$msg': $(journalctl -q -u "$EXEC" -o cat --no-pager | grep -iE -- "$msg" | tail -n1)"
  check "$name-attempts-bounded" "$([ $((c1 - c0)) -ge 1 ] && [ $((c1 - c0)) -le "$BURST" ] && [ "$c2" = "$c1" ] && echo 0 || echo 1)" \
    "gate ran $((c1 - c0)) time(s) (bound StartLimitBurst=$BURST), $((c2 - c1)) more in the next $((2 * RESTART_S + 2))s; NRestarts=$(prop "$EXEC" NRestarts)"
}

log "== no watchlist"
gate_blocks gate-missing 'Watchlist missing'

log "== stale watchlist: yesterday's (a real scan for the previous weekday, written then)"
yesterday=$(TZ=America/New_York date -d 'yesterday 12:00' +%F)
case $(TZ=America/New_York date -d 'yesterday 12:00' +%u) in
  6) yesterday=$(TZ=America/New_York date -d 'yesterday 12:00 -1 day' +%F) ;;
  7) yesterday=$(TZ=America/New_York date -d 'yesterday 12:00 -2 days' +%F) ;;
esac
tmp_state=$(mktemp -d)
if [ -n "$SCAN_BIN" ] && "$SCAN_BIN" --provider synthetic --as-of "$yesterday" --state-dir "$tmp_state" \
  --log-format text >"$tmp_state/scan.out" 2>&1 && [ -f "$tmp_state/daily_candidates.csv" ]; then
  cp "$tmp_state/daily_candidates.csv" "$WATCHLIST"
  stale_what="a synthetic scan for $yesterday"
else
  printf 'SchemaVersion\n' >"$WATCHLIST"
  stale_what="a header-only file (the synthetic scan for $yesterday wrote nothing: $(tail -n1 "$tmp_state/scan.out" 2>/dev/null))"
fi
rm -rf "$tmp_state"
chown "$SVC_USER:$SVC_GROUP" "$WATCHLIST"
chmod 0640 "$WATCHLIST"
TZ=America/New_York touch -d "$yesterday 09:00" "$WATCHLIST"
log "stale watchlist: $stale_what, mtime $(TZ=America/New_York date -r "$WATCHLIST" '+%F %H:%M %Z')"
gate_blocks gate-stale 'Watchlist is not from today \(NY\)'

# ---------------------------------------------------------------------------------------------
log "== scan: fresh watchlist, execution starts by itself"
helper_runs0=$(runs execution-restart.service)
t0=$(mono_ms)
if timeout 1200 systemctl start scan.service; then scan_rc=0; else scan_rc=$?; fi
check scan-succeeds "$scan_rc" "systemctl start scan.service rc=$scan_rc in $((($(mono_ms) - t0) / 1000))s; Result=$(prop scan.service Result) ExecMainStatus=$(prop scan.service ExecMainStatus)"
if [ -f "$WATCHLIST" ] && [ "$(ny_date -r "$WATCHLIST")" = "$(ny_date)" ] && [ "$(head -c 13 "$WATCHLIST")" = SchemaVersion ] &&
  [ "$(wc -l <"$WATCHLIST")" -ge 1 ] && [ "$(stat -c %U "$WATCHLIST")" = "$SVC_USER" ]; then
  check watchlist-fresh 0 "$WATCHLIST written $(TZ=America/New_York date -r "$WATCHLIST" '+%F %H:%M %Z') by $(stat -c '%U:%G %a' "$WATCHLIST"), $(($(wc -l <"$WATCHLIST") - 1)) candidate row(s)"
else
  check watchlist-fresh 1 "$WATCHLIST missing, not from today (NY $(ny_date)) or not owned by $SVC_USER: $(ls -l "$WATCHLIST" 2>&1)"
fi
# execution is "failed" from the gate checks above; only "active" counts, within the bound.
state=$(wait_prop "$EXEC" ActiveState $((RESTART_S + STARTUP_ALLOWANCE + 30)) active)
settle_units
state=$(prop "$EXEC" ActiveState)
helper_runs1=$(runs execution-restart.service)
check execution-started-by-scan "$([ "$state" = active ] && [ "$helper_runs1" -gt "$helper_runs0" ] && echo 0 || echo 1)" \
  "ActiveState=$state MainPID=$(prop "$EXEC" MainPID) $((($(mono_ms) - t0) / 1000))s after the scan started, without manual steps; execution-restart.service started $((helper_runs1 - helper_runs0)) time(s) by scan.service's OnSuccess=, Result=$(prop execution-restart.service Result)"

# ---------------------------------------------------------------------------------------------
log "== exactly one execution process"
one_process() {
  local main exe cg procs=0 same=0 p
  main=$(prop "$EXEC" MainPID)
  if [ "$main" = 0 ] || [ ! -e "/proc/$main" ]; then
    check "$1" 1 "no main process (MainPID=$main)"
    return
  fi
  exe=$(readlink "/proc/$main/exe")
  cg=$(prop "$EXEC" ControlGroup)
  [ -r "/sys/fs/cgroup$cg/cgroup.procs" ] && procs=$(wc -l <"/sys/fs/cgroup$cg/cgroup.procs")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && same=$((same + 1))
  done
  check "$1" "$([ "$procs" = 1 ] && [ "$same" = 1 ] && case $exe in */avwap-execution) true ;; *) false ;; esac && echo 0 || echo 1)" \
    "MainPID=$main exe=$exe; processes in $cg: $procs; processes running that executable on the host: $same"
}
one_process single-process

# ---------------------------------------------------------------------------------------------
log "== execution-restart.service restarts execution (systemctl from inside its sandbox)"
old=$(prop "$EXEC" MainPID)
if timeout 600 systemctl start execution-restart.service; then rc=0; else rc=$?; fi
new=$(prop "$EXEC" MainPID)
check restart-helper "$([ "$rc" = 0 ] && [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$(prop "$EXEC" ActiveState)" = active ] && echo 0 || echo 1)" \
  "rc=$rc MainPID $old -> $new, ActiveState=$(prop "$EXEC" ActiveState)"

# ---------------------------------------------------------------------------------------------
log "== stays up: watchdog pings keep it alive beyond WatchdogSec, and it does not exit by itself"
# WatchdogUSec reads "infinity" until the service has been started once (systemd 252).
WATCHDOG_S=$(span_s "$(prop "$EXEC" WatchdogUSec)")
[ "$WATCHDOG_S" -gt 600 ] && WATCHDOG_S=600
alive_pid=$(prop "$EXEC" MainPID)
alive_n=$(prop "$EXEC" NRestarts)
sleep $((WATCHDOG_S + 10))
check stays-up "$([ "$(prop "$EXEC" ActiveState)" = active ] && [ "$(prop "$EXEC" MainPID)" = "$alive_pid" ] && [ "$(prop "$EXEC" NRestarts)" = "$alive_n" ] && echo 0 || echo 1)" \
  "after $((WATCHDOG_S + 10))s: ActiveState=$(prop "$EXEC" ActiveState) MainPID $alive_pid -> $(prop "$EXEC" MainPID), NRestarts $alive_n -> $(prop "$EXEC" NRestarts), Result=$(prop "$EXEC" Result) ExecMainCode=$(prop "$EXEC" ExecMainCode) ExecMainStatus=$(prop "$EXEC" ExecMainStatus)"
if [ "$(prop "$EXEC" ActiveState)" != active ]; then
  log "execution is not running; starting it again for the remaining checks"
  systemctl reset-failed "$EXEC" 2>/dev/null
  systemctl start "$EXEC"
fi

# ---------------------------------------------------------------------------------------------
log "== avwap-check: healthy"
check_json=$(avwap_check --json 2>/dev/null)
check_rc=$?
verdict=$(printf '%s' "$check_json" | sed -n 's/^{"verdict":"\([a-z]*\)".*/\1/p')
not_ok=$(printf '%s' "$check_json" | grep -o '{"name":"[^"]*","status":"\(warn\|fail\)","message":"[^"]*' | sed 's/^{"name":"//; s/","status":"/ /; s/","message":"/: /' | tr '\n' ';')
exec_check=$(printf '%s' "$check_json" | grep -o '{"name":"execution.service","status":"[a-z]*"' | sed 's/.*"status":"//; s/"$//')
check avwap-check-healthy "$([ "$check_rc" = 0 ] && [ "$verdict" = ok ] && [ "$exec_check" = ok ] && echo 0 || echo 1)" \
  "avwap-check --json exit $check_rc, verdict=$verdict, execution.service=$exec_check; not ok: ${not_ok:-none}"
one_process single-process-checked

# ---------------------------------------------------------------------------------------------
log "== SIGKILL of the main process: restarted after RestartSec"
# kill_main: SIGKILL the main process and follow the unit. Sets K_OLD, K_NEW (0 if none),
# K_STARTED_MS (kill -> systemd starts it again: gate or main process), K_ACTIVE_MS
# (kill -> active again), K_STATE (final ActiveState).
kill_main() {
  local t0 deadline sub st pid
  K_OLD=$(prop "$EXEC" MainPID)
  K_NEW=0
  K_STARTED_MS=-1
  K_ACTIVE_MS=-1
  K_STATE=$(prop "$EXEC" ActiveState)
  # Never `kill 0` (that would be our own process group): only a real main PID.
  [ "$K_OLD" -gt 1 ] 2>/dev/null || return 1
  t0=$(mono_ms)
  kill -KILL "$K_OLD"
  deadline=$((t0 + (RESTART_S + STARTUP_ALLOWANCE + 15) * 1000))
  while [ "$(mono_ms)" -lt "$deadline" ]; do
    st=$(prop "$EXEC" ActiveState)
    sub=$(prop "$EXEC" SubState)
    pid=$(prop "$EXEC" MainPID)
    K_STATE=$st
    if [ "$K_STARTED_MS" -lt 0 ] && [ "$st" = activating ] && [ "$sub" != auto-restart ]; then
      K_STARTED_MS=$(($(mono_ms) - t0))
    fi
    if [ "$st" = active ] && [ "$pid" != 0 ] && [ "$pid" != "$K_OLD" ]; then
      K_NEW=$pid
      K_ACTIVE_MS=$(($(mono_ms) - t0))
      [ "$K_STARTED_MS" -lt 0 ] && K_STARTED_MS=$K_ACTIVE_MS
      return 0
    fi
    [ "$st" = failed ] && return 1
    sleep 0.2
  done
  return 1
}
n0=$(prop "$EXEC" NRestarts)
kill_main
check crash-restarted "$([ "$K_NEW" != 0 ] && [ "$K_STARTED_MS" -ge $(((RESTART_S - 1) * 1000)) ] && [ "$K_STARTED_MS" -le $(((RESTART_S + 15) * 1000)) ] && [ "$K_ACTIVE_MS" -le $(((RESTART_S + STARTUP_ALLOWANCE) * 1000)) ] && echo 0 || echo 1)" \
  "killed $K_OLD; systemd started it again after $(secs "$K_STARTED_MS") (RestartSec=${RESTART_S}s, want $((RESTART_S - 1))..$((RESTART_S + 15))s), new MainPID=$K_NEW active after $(secs "$K_ACTIVE_MS") (bound $((RESTART_S + STARTUP_ALLOWANCE))s); NRestarts $n0 -> $(prop "$EXEC" NRestarts)"
one_process single-process-after-restart

# ---------------------------------------------------------------------------------------------
log "== repeated crashes stop at the start limit, and avwap-check says so"
# A fresh budget first, the way operators and the 08:40 restart get one.
timeout 600 systemctl start execution-restart.service
wait_prop "$EXEC" ActiveState $((STARTUP_ALLOWANCE + 30)) active >/dev/null
limit_msg='Start request repeated too quickly'
lim0=$(journal_count "$limit_msg")
kills=0
while [ "$kills" -lt $((BURST + 2)) ]; do
  [ "$(prop "$EXEC" ActiveState)" = active ] || break
  kill_main
  kills=$((kills + 1))
  [ "$K_STATE" = failed ] && break
done
final_state=$(wait_prop "$EXEC" ActiveState 30 failed)
final_result=$(prop "$EXEC" Result)
nrestarts=$(prop "$EXEC" NRestarts)
sleep $((2 * RESTART_S + 2))
quiet_state=$(prop "$EXEC" ActiveState)
lim1=$(journal_count "$limit_msg")
# systemd 252 and 257 keep the first failure's Result (here "signal") when the restart is
# refused; the journal line "Start request repeated too quickly" is the evidence of the start
# limit. Other versions may say Result=start-limit-hit.
check crash-loop-stops-at-start-limit "$([ "$final_state" = failed ] && [ "$kills" -ge 1 ] && [ "$kills" -le "$BURST" ] &&
  [ $((lim1 - lim0)) -ge 1 ] && [ "$quiet_state" = failed ] && case $final_result in signal | start-limit-hit) true ;; *) false ;; esac && echo 0 || echo 1)" \
  "$kills SIGKILL(s) of a freshly (re)started execution; then ActiveState=$final_state Result=$final_result NRestarts=$nrestarts, journal: '$limit_msg' x$((lim1 - lim0)) (StartLimitBurst=$BURST in $(prop "$EXEC" StartLimitIntervalUSec)); $((2 * RESTART_S + 2))s later still $quiet_state"
check_json=$(avwap_check --json 2>/dev/null)
check_rc=$?
verdict=$(printf '%s' "$check_json" | sed -n 's/^{"verdict":"\([a-z]*\)".*/\1/p')
exec_line=$(printf '%s' "$check_json" | grep -o '{"name":"execution.service","status":"[a-z]*","message":"[^"]*' | sed 's/^{"name":"execution.service","status":"//; s/","message":"/: /')
check avwap-check-reports-start-limit "$([ "$check_rc" = 1 ] && [ "$verdict" = fail ] && case $exec_line in fail:\ failed:*start-limit-hit* | fail:\ failed:*"$nrestarts automatic restart(s)"*) true ;; *) false ;; esac && echo 0 || echo 1)" \
  "avwap-check --json exit $check_rc, verdict=$verdict, execution.service: $exec_line"
# Recovery as documented: a successful scan or the 08:40 restart resets the start limit.
timeout 600 systemctl start execution-restart.service
state=$(wait_prop "$EXEC" ActiveState $((STARTUP_ALLOWANCE + 30)) active)
check recovers-after-start-limit "$([ "$state" = active ] && echo 0 || echo 1)" \
  "systemctl start execution-restart.service (reset-failed + restart): ActiveState=$state MainPID=$(prop "$EXEC" MainPID)"

# ---------------------------------------------------------------------------------------------
log "== kill switch: no new entries in the decision log, the cycle (stops, exits) goes on"
ks_count() { printf '%s' "$1" | grep -o '"kill_switch": [0-9]*' | grep -o '[0-9]*$' | head -n1; }
entry_orders() { printf '%s' "$1" | grep -c '"client_order_id": "avw-[^"]*-en-'; }
before=$(report_json)
ks0=$(ks_count "$before")
ks0=${ks0:-0}
en0=$(entry_orders "$before")
cycles0=$(journal_count 'cycle done')
kpid=$(prop "$EXEC" MainPID)
install -o "$SVC_USER" -g "$SVC_GROUP" -m 0640 /dev/null "$STATE_DIR/KILL_SWITCH"
t0=$(mono_ms)
# The switch is read at the start of every cycle: at most poll_seconds_open (60 s) away.
deadline=$((t0 + 180 * 1000))
ks1=$ks0
after=$before
while [ "$(mono_ms)" -lt "$deadline" ]; do
  sleep 5
  after=$(report_json)
  ks1=$(ks_count "$after")
  ks1=${ks1:-0}
  [ "$ks1" -gt "$ks0" ] && break
done
en1=$(entry_orders "$after")
check kill-switch-no-new-entries "$([ "$ks1" -gt "$ks0" ] && [ "$en1" = "$en0" ] && echo 0 || echo 1)" \
  "decision log (avwap-execution report --json, $(ny_date)): 'kill_switch' entry skips $ks0 -> $ks1 within $((($(mono_ms) - t0) / 1000))s; entry orders $en0 -> $en1; skips by reason: $(printf '%s' "$after" | tr -d '\n ' | grep -o '"skipped_by_reason":{[^}]*}' | sed 's/"skipped_by_reason"://')"
# After the cycle that honoured the switch, the next one runs as well (stops and exits are
# handled every cycle); this guest has no positions, so "exits continue" is the cycle going on.
msg='kill switch engaged: no new entries; stops and exits continue'
wait_prop "$EXEC" ActiveState 1 active >/dev/null
deadline=$(($(mono_ms) + 150 * 1000))
while [ "$(mono_ms)" -lt "$deadline" ] && [ "$(journal_count 'cycle done')" -lt $((cycles0 + 2)) ]; do sleep 2; done
cycles1=$(journal_count 'cycle done')
check kill-switch-cycle-continues "$([ "$cycles1" -ge $((cycles0 + 2)) ] && [ "$(prop "$EXEC" MainPID)" = "$kpid" ] && [ "$(journal_count "$msg")" -ge 1 ] && echo 0 || echo 1)" \
  "$((cycles1 - cycles0)) cycle(s) completed with the switch on, same MainPID $kpid -> $(prop "$EXEC" MainPID); journal: $(journalctl -q -u "$EXEC" -o cat --no-pager | grep -F "$msg" | tail -n1 | cut -c1-160)"
rm -f "$STATE_DIR/KILL_SWITCH"

# ---------------------------------------------------------------------------------------------
log "== systemctl stop: clean exit 0 within TimeoutStopSec"
before_stop=$(prop "$EXEC" ActiveState)
stop_pid=$(prop "$EXEC" MainPID)
t0=$(mono_ms)
timeout $((STOP_TIMEOUT_S + 30)) systemctl stop "$EXEC"
elapsed=$((($(mono_ms) - t0) / 1000))
code=$(prop "$EXEC" ExecMainCode)
status=$(prop "$EXEC" ExecMainStatus)
check stop-clean "$([ "$before_stop" = active ] && [ "$stop_pid" != 0 ] && [ "$code" = 1 ] && [ "$status" = 0 ] && [ "$elapsed" -lt "$STOP_TIMEOUT_S" ] && echo 0 || echo 1)" \
  "was $before_stop (MainPID $stop_pid), stopped in ${elapsed}s (TimeoutStopSec=${STOP_TIMEOUT_S}s); ExecMainCode=$code (1 = exited, 2 = killed by signal) ExecMainStatus=$status Result=$(prop "$EXEC" Result)"

# ---------------------------------------------------------------------------------------------
log "== timers: next elapse at 08:30 / 08:40 New York on the next weekday"
TZ=UTC systemctl list-timers --all --no-pager "${TIMERS[@]}" | sed 's/^/# /'
timer_at() { # unit HH:MM
  local e now ok_=0
  e=$(prop_epoch "$1" NextElapseUSecRealtime)
  now=$(date +%s)
  case $(TZ=America/New_York date -d "@$e" '+%a %H:%M') in
    Mon\ "$2" | Tue\ "$2" | Wed\ "$2" | Thu\ "$2" | Fri\ "$2") ;;
    *) ok_=1 ;;
  esac
  [ "$e" -gt "$now" ] && [ $((e - now)) -le $((4 * 86400)) ] || ok_=1
  check "$1-next-elapse" "$ok_" "next elapse $(utc "$e") = New York $(ny "$e"); $(prop "$1" TimersCalendar | sed 's/^{ //; s/ ;.*//')"
}
timer_at scan.timer 08:30
timer_at execution-restart.timer 08:40

finish
