#!/usr/bin/env bash
# The avwap deployment scenario: run as root inside a guest whose PID 1 is systemd and which has
# the five avwap units installed (NixOS: services.avwap with scanProvider = "synthetic", see
# nix/tests/vm.nix; Debian/Ubuntu: dist/systemd/ rendered with --set scanProvider=synthetic).
#
# It reads every policy value (state dir, user, restart delay, start limit, stop timeout) from
# the loaded units with `systemctl show`, so it never carries a second copy of nix/units.nix.
#
# Output, one line per check, machine-readable:
#   RESULT name=<id> status=pass|fail detail=<free text to end of line>
# then
#   SUMMARY passed=<n> failed=<m>
#   <n> passed, <m> failed
# Exit status 0 only if no check failed. Every wait is bounded.
#
# Environment:
#   SCENARIO_CLOCK   UTC time to set before the checks (default "2030-06-12 14:00:00", a
#                    Wednesday NYSE session, 10:00 New York), or "keep" to leave the clock alone
#                    (the harness then must boot the guest on a weekday session).
#   SCENARIO_STARTUP_ALLOWANCE  seconds allowed for avwap-execution to reach READY=1 (default 60)
#
# What it changes in the guest: the clock (unless keep), the watchlist and KILL_SWITCH in the
# state directory, the persistent stamps of scan.timer and execution-restart.timer.

set -u
export LC_ALL=C

CLOCK=${SCENARIO_CLOCK:-2030-06-12 14:00:00}
STARTUP_ALLOWANCE=${SCENARIO_STARTUP_ALLOWANCE:-60}
EXEC=execution.service
PASSED=0
FAILED=0

log() { printf '%s\n' "# [$(date -u +%T)] $*"; }

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

# Monotonic milliseconds (immune to the clock change below).
mono_ms() {
  local up
  read -r up _ </proc/uptime
  echo $((${up%.*} * 1000 + 10#${up#*.} * 10))
}

prop() { systemctl show -p "$2" --value "$1"; }

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

# Lines of the execution unit's journal matching an extended regexp (case-insensitive).
journal_count() { journalctl -q -u "$EXEC" -o cat --no-pager | grep -ciE -- "$1"; }

ny_date() { TZ=America/New_York date "$@" +%F; }

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
for kv in $(prop "$EXEC" Environment); do
  case $kv in AVWAP_STATE_DIR=*) STATE_DIR=${kv#AVWAP_STATE_DIR=} ;; esac
done
SVC_USER=$(prop "$EXEC" User)
SVC_GROUP=$(prop "$EXEC" Group)
RESTART_S=$(span_s "$(prop "$EXEC" RestartUSec)")
BURST=$(prop "$EXEC" StartLimitBurst)
STOP_TIMEOUT_S=$(span_s "$(prop "$EXEC" TimeoutStopUSec)")
WATCHDOG_S=$(span_s "$(prop "$EXEC" WatchdogUSec)")
WATCHLIST=$STATE_DIR/daily_candidates.csv
log "state dir $STATE_DIR, user $SVC_USER:$SVC_GROUP, RestartSec ${RESTART_S}s, StartLimitBurst $BURST, TimeoutStopSec ${STOP_TIMEOUT_S}s, WatchdogSec ${WATCHDOG_S}s"
log "systemd $(systemctl --version | head -n1)"

# ---------------------------------------------------------------------------------------------
log "== prepare: timers stopped, execution stopped, clock set, no watchlist"
systemctl stop scan.timer execution-restart.timer
systemctl stop "$EXEC" execution-restart.service
wait_prop scan.service ActiveState 1200 inactive failed >/dev/null
systemctl reset-failed "$EXEC" scan.service execution-restart.service 2>/dev/null
if [ "$CLOCK" != keep ]; then
  timedatectl set-ntp false >/dev/null 2>&1
  if date -u -s "$CLOCK" >/dev/null; then
    result clock-set pass "guest clock set to $(date -u '+%F %T UTC'), New York $(TZ=America/New_York date '+%a %F %H:%M %Z')"
  else
    result clock-set fail "date -u -s '$CLOCK' failed"
  fi
else
  log "clock kept: $(date -u '+%F %T UTC')"
fi
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

log "== stale watchlist (written 30 hours ago)"
printf 'SchemaVersion\n' >"$WATCHLIST"
chown "$SVC_USER:$SVC_GROUP" "$WATCHLIST"
touch -d "@$(($(date +%s) - 30 * 3600))" "$WATCHLIST"
gate_blocks gate-stale 'Watchlist is not from today \(NY\)'

# ---------------------------------------------------------------------------------------------
log "== scan: fresh watchlist, execution starts by itself"
helper_runs0=$(journalctl -q -u execution-restart.service -o cat --no-pager | grep -c '^Starting ')
t0=$(mono_ms)
if timeout 1200 systemctl start scan.service; then scan_rc=0; else scan_rc=$?; fi
check scan-succeeds "$scan_rc" "systemctl start scan.service rc=$scan_rc in $((($(mono_ms) - t0) / 1000))s; Result=$(prop scan.service Result) ExecMainStatus=$(prop scan.service ExecMainStatus)"
if [ -f "$WATCHLIST" ] && [ "$(ny_date -r "$WATCHLIST")" = "$(ny_date)" ] && [ "$(head -c 13 "$WATCHLIST")" = SchemaVersion ] && [ "$(wc -l <"$WATCHLIST")" -ge 1 ]; then
  check watchlist-fresh 0 "$WATCHLIST written $(TZ=America/New_York date -r "$WATCHLIST" '+%F %H:%M %Z'), $(($(wc -l <"$WATCHLIST") - 1)) candidate row(s)"
else
  check watchlist-fresh 1 "$WATCHLIST missing or not from today (NY $(ny_date))"
fi
# execution is "failed" from the gate checks above; only "active" counts, within the bound.
state=$(wait_prop "$EXEC" ActiveState $((RESTART_S + STARTUP_ALLOWANCE + 30)) active)
helper_runs1=$(journalctl -q -u execution-restart.service -o cat --no-pager | grep -c '^Starting ')
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
log "== SIGKILL of the main process: restarted after RestartSec"
old=$(prop "$EXEC" MainPID)
n0=$(prop "$EXEC" NRestarts)
t0=$(mono_ms)
new=0
deadline=$t0
# Never `kill 0` (that would be our own process group): only a real main PID.
if [ "$old" -gt 1 ] 2>/dev/null; then
  kill -KILL "$old"
  deadline=$((t0 + (RESTART_S + STARTUP_ALLOWANCE) * 1000))
fi
while [ "$(mono_ms)" -lt "$deadline" ]; do
  new=$(prop "$EXEC" MainPID)
  if [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$(prop "$EXEC" ActiveState)" = active ]; then break; fi
  new=0
  sleep 0.2
done
elapsed=$((($(mono_ms) - t0) / 1000))
check crash-restarted "$([ "$new" != 0 ] && echo 0 || echo 1)" \
  "killed $old, new MainPID=$new active after ${elapsed}s (RestartSec=${RESTART_S}s + startup allowance ${STARTUP_ALLOWANCE}s); NRestarts $n0 -> $(prop "$EXEC" NRestarts)"
one_process single-process-after-restart

# ---------------------------------------------------------------------------------------------
log "== stays up: watchdog pings keep it alive beyond WatchdogSec, and it does not exit by itself"
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
log "== kill switch"
# TODO(execution): replace this journal grep by a check of the execution decision log once
# avwap-execution records kill-switch decisions in its state database.
k0=$(journal_count 'kill.?switch')
touch "$STATE_DIR/KILL_SWITCH"
chown "$SVC_USER:$SVC_GROUP" "$STATE_DIR/KILL_SWITCH"
deadline=$(($(mono_ms) + 120 * 1000))
k1=$k0
while [ "$(mono_ms)" -lt "$deadline" ]; do
  k1=$(journal_count 'kill.?switch')
  [ "$k1" -gt "$k0" ] && break
  sleep 1
done
check kill-switch-logged-TODO "$([ "$k1" -gt "$k0" ] && echo 0 || echo 1)" \
  "TODO(execution) journal grep only: $((k1 - k0)) new line(s) matching 'kill switch' within 120s: $(journalctl -q -u "$EXEC" -o cat --no-pager | grep -iE 'kill.?switch' | tail -n1)"
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
log "== timers: next elapse at 08:30 / 08:40 New York on a weekday"
# systemd computes a restarted timer's first elapse from its previous activation, which was
# before the clock change, so each timer fires once right away ("catch-up", also measured in
# the notes). Let that run settle (it scans and restarts execution), then read the schedule.
runs() { journalctl -q -u "$1" -o cat --no-pager | grep -c '^Starting '; }
s0=$(runs scan.service)
r0=$(runs execution-restart.service)
systemctl start scan.timer execution-restart.timer
sleep 3
wait_prop scan.service ActiveState 1200 inactive failed >/dev/null
wait_prop execution-restart.service ActiveState 600 inactive failed >/dev/null
wait_prop scan.timer SubState 60 waiting >/dev/null
wait_prop execution-restart.timer SubState 60 waiting >/dev/null
s1=$(runs scan.service)
r1=$(runs execution-restart.service)
check timers-catch-up-at-most-once "$([ $((s1 - s0)) -le 1 ] && [ $((r1 - r0)) -le 2 ] && echo 0 || echo 1)" \
  "after the clock change, starting the timers ran scan.service $((s1 - s0)) time(s) and execution-restart.service $((r1 - r0)) time(s) (timer + the scan's OnSuccess=)"
systemctl list-timers --all --no-pager scan.timer execution-restart.timer | sed 's/^/# /'
timer_at() { # unit HH:MM
  local raw epoch ny now
  raw=$(TZ=UTC systemctl show -p NextElapseUSecRealtime --value "$1")
  epoch=$(date -u -d "${raw#* }" +%s 2>/dev/null || echo 0)
  now=$(date +%s)
  ny=$(TZ=America/New_York date -d "@$epoch" '+%a %H:%M')
  case $ny in
    Mon\ "$2" | Tue\ "$2" | Wed\ "$2" | Thu\ "$2" | Fri\ "$2") ok=0 ;;
    *) ok=1 ;;
  esac
  [ "$epoch" -gt "$now" ] && [ $((epoch - now)) -le $((4 * 86400)) ] || ok=1
  check "$1-next-elapse" $ok "NextElapseUSecRealtime=$raw = New York $(TZ=America/New_York date -d "@$epoch" '+%a %F %H:%M %Z'); $(prop "$1" TimersCalendar | sed 's/^{ //; s/ ;.*//')"
}
timer_at scan.timer 08:30
timer_at execution-restart.timer 08:40

finish
