#!/usr/bin/env bash
# The production scenario of the real-systemd VM test: a paper-trading day as an operator sets
# it up (dist/systemd/INSTALL.md's paper recipe: units rendered with mode=alpaca-paper and the
# Alpaca scan provider, credentials as files), against the test-only fake Alpaca
# (examples/fake_alpaca.rs) and its webhook receiver on loopback in the guest. tests/vm/guest.sh
# runs it after nix/tests/scenario.sh; same output format:
#
#   RESULT name=paper-<id> status=pass|fail detail=<free text>
#   SUMMARY passed=<n> failed=<m>
#
# Checks, in order, on Thu 2030-06-13 (an NYSE session, EDT):
#   units        the installed units are the rendered paper recipe (alpaca-paper, --provider
#                alpaca with network and credentials), OnFailure= alert and summary timer
#   0830         scan.timer fires at 08:30 New York, the scan fetches daily bars from the fake
#                and writes the watchlist, its OnSuccess= chain starts execution: the gate passes
#   0840         execution-restart.timer restarts execution at 08:40
#   entry/stop   in the session the process started at 08:40 buys a breakout (the fake fills it)
#                and places a GTC protective stop for the filled quantity
#   check        avwap-check is green
#   stall        the fake stops answering for 3 minutes: execution is not killed (its cycle
#                deadline is below half of WatchdogSec), and trades on afterwards
#   onfailure    a forced failure (the gate refusing until the start limit) delivers the
#                OnFailure= alert naming the unit to the webhook
#   summary      the end-of-day summary arrives at the webhook
#
# Environment: PAPER_DIR (payload: bin/fake_alpaca, paper-units/), the rest is fixed here.
set -u
export LC_ALL=C

P=${PAPER_DIR:-/vmtest}
EXEC=execution.service
TIMERS=(scan.timer execution-restart.timer)
STATE_DIR=/var/lib/avwap
WATCHLIST=$STATE_DIR/daily_candidates.csv
API=127.0.0.1:18480
CTL=127.0.0.1:18481
ALERTS=/root/webhook-alerts.log
CREDS=/etc/avwap/credentials
DAY=2030-06-13
DATA_AS_OF=2030-06-12
PASSED=0
FAILED=0

log() { printf '%s\n' "# [paper $(date -u '+%F %T')] $*"; }
result() { # name status detail...
  local name=$1 status=$2
  shift 2
  printf 'RESULT name=paper-%s status=%s detail=%s\n' "$name" "$status" "$*"
  if [ "$status" = pass ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}
check() { # name condition-exit-status detail...
  local name=$1 ok=$2
  shift 2
  if [ "$ok" = 0 ]; then result "$name" pass "$@"; else result "$name" fail "$@"; fi
}
finish() {
  printf 'SUMMARY passed=%s failed=%s\n' "$PASSED" "$FAILED"
  [ "$FAILED" = 0 ]
  exit $?
}
mono_ms() {
  local up
  read -r up _ </proc/uptime
  echo $((${up%.*} * 1000 + 10#${up#*.} * 10))
}
prop() { systemctl show -p "$2" --value "$1"; }
prop_epoch() {
  local raw
  raw=$(TZ=UTC systemctl show -p "$2" --value "$1")
  case $raw in "" | n/a | 0) echo 0 ;; *) date -u -d "${raw#* }" +%s 2>/dev/null || echo 0 ;; esac
}
epoch() { date -u -d "$1 UTC" +%s; }
ny() { TZ=America/New_York date -d "@$1" '+%a %F %H:%M:%S %Z'; }
set_clock() { date -u -s "@$1" >/dev/null || log "date -s @$1 failed"; }
wait_prop() { # unit prop timeout_s value...; prints the final value
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
settle_units() {
  local deadline
  deadline=$(($(mono_ms) + 1200 * 1000))
  while [ "$(mono_ms)" -lt "$deadline" ]; do
    if ! systemctl list-jobs --no-legend --no-pager 2>/dev/null | grep -qE ' (scan|execution|execution-restart)\.service '; then
      case "$(prop scan.service ActiveState) $(prop execution-restart.service ActiveState)" in
        *activating*) ;;
        *) return 0 ;;
      esac
    fi
    sleep 0.5
  done
}
runs() { journalctl -q -u "$1" -o cat --no-pager | grep -c '^Starting '; }
journal_count() { journalctl -q -u "$EXEC" -o cat --no-pager | grep -ciE -- "$1"; }
# The fake's control endpoint (never stalled). curl is not in the minimal guest: bash's
# /dev/tcp, one request per connection (the fake answers with Connection: close).
ctl() { # METHOD PATH -> the answer's body on stdout
  local body
  exec 7<>"/dev/tcp/${CTL%:*}/${CTL#*:}" || return 1
  printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' "$1" "$2" "$CTL" >&7
  body=$(timeout 30 cat <&7)
  exec 7<&-
  printf '%s\n' "${body#*$'\r\n\r\n'}"
}
orders_json() { ctl GET /orders; }
# Orders as "side type tif status qty filled client_id" lines (the fake's JSON is one line).
orders_lines() {
  orders_json | grep -o '{[^{}]*}' | while read -r o; do
    f() { printf '%s' "$o" | grep -o "\"$1\":\"[^\"]*\"" | head -n1 | sed 's/.*:"//; s/"$//'; }
    printf '%s %s %s %s %s %s %s\n' "$(f side)" "$(f type)" "$(f time_in_force)" "$(f status)" "$(f qty)" "$(f filled_qty)" "$(f client_order_id)"
  done
}
# "1min 30s", "10s", "500ms", "infinity" -> whole seconds (as nix/tests/scenario.sh).
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
      *) ;;
    esac
  done
  echo $(((total_ms + 999) / 1000))
}
alerts_matching() { grep -ciE -- "$1" "$ALERTS" 2>/dev/null || true; }

# ---------------------------------------------------------------------------------------------
log "== install: the paper recipe of dist/systemd/INSTALL.md against the fake on loopback"
systemctl stop "${TIMERS[@]}" "$EXEC" execution-restart.service scan.service 2>/dev/null
systemctl reset-failed 2>/dev/null
install -d -m 0700 "$CREDS"
# The fake's key pair (tests/alpaca/fake_alpaca: KEY_ID / SECRET) and the receiver's URL.
install -m 0600 /dev/stdin "$CREDS/alpaca-key-id" <<<'PKFAKEKEYID000000001'
install -m 0600 /dev/stdin "$CREDS/alpaca-secret-key" <<<'FAKE-SECRET-zq8Xw3vLeak-canary'
install -m 0600 /dev/stdin "$CREDS/alert-webhook-url" <<<"http://$CTL/webhook"
# avwap.toml: the shipped example with the URLs on loopback (the fixed clock is only allowed
# against loopback), the universe from the fake's holdings file, the equal-weight regime (the
# fake has no SPY), and a 60 s pre-market cadence (instead of 300 s) to fit CI's time budget.
sed -e "s|^trading_url = .*|trading_url = \"http://$API\"|" \
  -e "s|^data_url = .*|data_url = \"http://$API\"|" \
  -e 's|^source = "https://www.ishares.com.*|source = "holdings.csv"|' \
  -e 's|^min_members = .*|min_members = 50|' \
  -e 's|^benchmark = "SPY"|benchmark = "equal-weight"|' \
  -e 's|^poll_seconds_closed = .*|poll_seconds_closed = 60|' \
  "$P/examples/avwap.toml" >/etc/avwap/avwap.toml
grep -nE '^(trading_url|data_url|source|min_members|benchmark|poll_seconds_closed|cycle_deadline_seconds) ' /etc/avwap/avwap.toml | sed 's/^/#   /'
# The rendered units replace the sim ones; the sim scenario's test-only drop-in goes.
rm -rf /etc/systemd/system/scan.service.d
install -m 0644 "$P"/paper-units/*.service "$P"/paper-units/*.timer /etc/systemd/system/
systemctl daemon-reload
# A fresh state directory (also when the sim scenario did not create it).
install -d -o avwap -g avwap -m 0750 "$STATE_DIR"
rm -rf "${STATE_DIR:?}"/*
rm -f "$ALERTS"

exec_start=$(prop scan.service ExecStart)
units_ok=0
[ "$(prop "$EXEC" Environment | grep -o 'AVWAP_MODE=[a-z-]*')" = AVWAP_MODE=alpaca-paper ] || units_ok=1
case $exec_start in *"--provider alpaca"*) ;; *) units_ok=1 ;; esac
[ "$(prop scan.service PrivateNetwork)" = no ] || units_ok=1
# (`systemctl show` does not print LoadCredential= on every version: read the unit text)
creds_of() { systemctl cat "$1" 2>/dev/null | sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' | tr '\n' ' '; }
case " $(creds_of scan.service)" in *" alpaca-key-id "*) ;; *) units_ok=1 ;; esac
for c in alpaca-key-id alpaca-secret-key; do
  case " $(creds_of "$EXEC")" in *" $c "*) ;; *) units_ok=1 ;; esac
done
check units-paper-recipe "$units_ok" \
  "execution $(prop "$EXEC" Environment | grep -o 'AVWAP_MODE=[a-z-]*'), credentials $(creds_of "$EXEC"); scan: $(sed -n 's/.*argv\[\]=\([^;]*\);.*/\1/p' <<<"$exec_start"), PrivateNetwork=$(prop scan.service PrivateNetwork), credentials $(creds_of scan.service)"
# The alert units (rendered with the alert-webhook-url credential): OnFailure= on execution
# and scan naming a unit that runs `avwap-execution alert unit-failed`, and a timer whose
# service runs `avwap-execution alert summary` (found by what they run, not by name).
onfailure=$(prop "$EXEC" OnFailure)
alert_unit=${onfailure%% *}
alert_ok=1
if [ -n "$alert_unit" ] && prop "$alert_unit" ExecStart | grep -q 'alert unit-failed' &&
  [ "$(prop scan.service OnFailure)" != "" ]; then alert_ok=0; fi
check units-onfailure-alert "$alert_ok" \
  "execution.service OnFailure=${onfailure:-(none)} (runs: $( [ -n "$alert_unit" ] && prop "$alert_unit" ExecStart | sed -n 's/.*argv\[\]=\([^;]*\);.*/\1/p')); scan.service OnFailure=$(prop scan.service OnFailure)$( [ "$alert_ok" = 0 ] || echo '; no OnFailure= alert unit in the rendered units')"
SUMMARY_TIMER=""
for t in $(systemctl list-unit-files --type=timer --no-legend --no-pager | awk '{print $1}'); do
  if prop "$(prop "$t" Unit)" ExecStart 2>/dev/null | grep -q 'alert summary'; then SUMMARY_TIMER=$t; fi
done
check units-summary-timer "$([ -n "$SUMMARY_TIMER" ] && echo 0 || echo 1)" \
  "$( [ -n "$SUMMARY_TIMER" ] && echo "$SUMMARY_TIMER ($(prop "$SUMMARY_TIMER" TimersCalendar | sed 's/^{ //; s/ ;.*//')) runs $(prop "$SUMMARY_TIMER" Unit)" || echo "no timer runs 'avwap-execution alert summary' in the rendered units")"
[ -n "$SUMMARY_TIMER" ] && systemctl enable "$SUMMARY_TIMER" >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
log "== the fake Alpaca (test-only) and the webhook receiver, as a transient unit"
# The clock first: the fake stamps latest trades with its own now.
set_clock "$(epoch "$DAY 12:00:00")" # 08:00 New York
systemctl stop fake-alpaca.service 2>/dev/null
systemctl reset-failed fake-alpaca.service 2>/dev/null
systemd-run --unit=fake-alpaca --quiet -p Type=exec "$P/bin/fake_alpaca" --listen "$API" --control "$CTL" \
  --data-as-of "$DATA_AS_OF" --holdings "$STATE_DIR/holdings.csv" --webhook-log "$ALERTS" --symbols 120
up=1
for _ in $(seq 120); do
  if [ -s "$STATE_DIR/holdings.csv" ] && ctl GET /health 2>/dev/null | grep -q '"ok":true'; then up=0; break; fi
  sleep 1
done
chown avwap:avwap "$STATE_DIR/holdings.csv" 2>/dev/null
check fake-up "$up" "fake-alpaca.service $(prop fake-alpaca.service ActiveState); $(journalctl -q -u fake-alpaca.service -o cat --no-pager | grep -v '^fake-alpaca.service: ' | tail -n2 | tr '\n' ' ' | cut -c1-300)"
[ "$up" = 0 ] || finish

# ---------------------------------------------------------------------------------------------
log "== 08:30 scan (Alpaca provider) -> watchlist -> gate passes"
systemctl start "${TIMERS[@]}"
sleep 2
settle_units
systemctl stop "$EXEC" 2>/dev/null
systemctl reset-failed "$EXEC" 2>/dev/null
rm -f "$WATCHLIST"
bars0=$(ctl GET '/count?method=GET&path=/v2/stocks/bars' | grep -o '[0-9]*' | head -n1)
s0=$(runs scan.service)
scan_e=$(epoch "$DAY 12:30:00")
set_clock $((scan_e - 10))
trig=$(wait_epoch_ge scan.timer LastTriggerUSec "$scan_e" 90)
sleep 1
settle_units
bars1=$(ctl GET '/count?method=GET&path=/v2/stocks/bars' | grep -o '[0-9]*' | head -n1)
rows=0
[ -f "$WATCHLIST" ] && rows=$(($(wc -l <"$WATCHLIST") - 1))
check scan-0830-alpaca "$([ "$trig" -ge "$scan_e" ] && [ "$trig" -lt $((scan_e + 30)) ] && [ $(($(runs scan.service) - s0)) = 1 ] &&
  [ "$(prop scan.service Result)" = success ] && [ "${bars1:-0}" -gt "${bars0:-0}" ] && [ "$rows" -ge 1 ] &&
  [ "$(stat -c %U "$WATCHLIST" 2>/dev/null)" = avwap ] && echo 0 || echo 1)" \
  "scan.timer fired $( [ "$trig" -gt 0 ] && ny "$trig"); scan ran $(($(runs scan.service) - s0)) time(s), Result=$(prop scan.service Result); GET /v2/stocks/bars at the fake: ${bars0:-?} -> ${bars1:-?}; watchlist $rows row(s), owner $(stat -c %U "$WATCHLIST" 2>/dev/null); $(journalctl -q -u scan.service -o cat --no-pager | grep -iE 'topped up|watchlist' | tail -n1 | cut -c1-160)"
state=$(wait_prop "$EXEC" ActiveState 120 active)
check gate-passes "$([ "$state" = active ] && [ "$(prop "$EXEC" MainPID)" != 0 ] && echo 0 || echo 1)" \
  "after the scan's OnSuccess= chain: execution ActiveState=$state MainPID=$(prop "$EXEC" MainPID), ExecStartPre (avwap-gate) exit $(prop "$EXEC" ExecStartPre | grep -o 'status=[0-9]*' | head -n1)"

log "== 08:40 restart"
restart_e=$(epoch "$DAY 12:40:00")
set_clock $((restart_e - 10))
trig=$(wait_epoch_ge execution-restart.timer LastTriggerUSec "$restart_e" 90)
started=$(wait_epoch_ge "$EXEC" ExecMainStartTimestamp "$restart_e" 120)
state=$(wait_prop "$EXEC" ActiveState 120 active)
pid_0840=$(prop "$EXEC" MainPID)
check restart-0840 "$([ "$trig" -ge "$restart_e" ] && [ "$started" -ge "$restart_e" ] && [ "$state" = active ] && echo 0 || echo 1)" \
  "execution-restart.timer fired $( [ "$trig" -gt 0 ] && ny "$trig"); execution started $( [ "$started" -gt 0 ] && ny "$started"), $state, MainPID $pid_0840"

# ---------------------------------------------------------------------------------------------
log "== the session: a breakout is bought and protected by a GTC stop"
picked=$(ctl POST "/session?watchlist=$WATCHLIST")
log "fake: $picked"
set_clock "$(epoch "$DAY 14:04:30")" # 10:04:30 New York
t0=$(mono_ms)
entry=""
while [ $(($(mono_ms) - t0)) -lt 480000 ]; do
  entry=$(orders_lines | awk '$1 == "buy" && $7 ~ /^avw-20300613-.*-en-/ && $4 == "filled"' | head -n1)
  [ -n "$entry" ] && break
  sleep 5
done
read -r _ e_type e_tif _ e_qty _ e_cid <<<"${entry:-x x x x 0 0 none}"
check entry-filled "$([ -n "$entry" ] && [ "$(prop "$EXEC" MainPID)" = "$pid_0840" ] && echo 0 || echo 1)" \
  "fake answered /session with $picked; entry order after $((($(mono_ms) - t0) / 1000))s: ${entry:-none} ($e_type $e_tif); placed by the process the 08:40 restart started ($pid_0840 -> $(prop "$EXEC" MainPID))"
stop=""
t0=$(mono_ms)
while [ -n "$entry" ] && [ $(($(mono_ms) - t0)) -lt 240000 ]; do
  stop=$(orders_lines | awk -v q="$e_qty" '$1 == "sell" && $2 == "stop" && $3 == "gtc" && ($4 == "new" || $4 == "accepted") && $5 == q' | head -n1)
  [ -n "$stop" ] && break
  sleep 5
done
check gtc-stop-placed "$([ -n "$stop" ] && echo 0 || echo 1)" \
  "protective stop for the $e_qty filled shares of $e_cid: ${stop:-none} after $((($(mono_ms) - t0) / 1000))s; all orders: $(orders_lines | cut -d' ' -f1-5 | tr '\n' ';')"

# ---------------------------------------------------------------------------------------------
log "== avwap-check: green"
UNIT_ENV=()
for kv in $(prop "$EXEC" Environment); do UNIT_ENV+=("$kv"); done
# a cycle after the stop so the reconciliation verdict covers it
cycles=$(journal_count 'cycle done')
deadline=$(($(mono_ms) + 150000))
while [ "$(mono_ms)" -lt "$deadline" ] && [ "$(journal_count 'cycle done')" -le "$cycles" ]; do sleep 2; done
check_json=$(env "${UNIT_ENV[@]}" /usr/local/bin/avwap-check --json 2>/dev/null)
check_rc=$?
verdict=$(printf '%s' "$check_json" | sed -n 's/^{"verdict":"\([a-z]*\)".*/\1/p')
not_ok=$(printf '%s' "$check_json" | grep -o '{"name":"[^"]*","status":"\(warn\|fail\)","message":"[^"]*' | sed 's/^{"name":"//; s/","status":"/ /; s/","message":"/: /' | tr '\n' ';')
check avwap-check-green "$([ "$check_rc" = 0 ] && [ "$verdict" = ok ] && echo 0 || echo 1)" \
  "avwap-check --json exit $check_rc, verdict=$verdict; not ok: ${not_ok:-none}"

# ---------------------------------------------------------------------------------------------
log "== the fake stops answering for 3 minutes: the watchdog holds"
wd=$(prop "$EXEC" WatchdogUSec)
wd_s=$(span_s "$wd")
deadline_cfg=$(sed -n 's/^cycle_deadline_seconds = \([0-9]*\).*/\1/p' /etc/avwap/avwap.toml)
pid=$(prop "$EXEC" MainPID)
n0=$(prop "$EXEC" NRestarts)
wd0=$(journalctl -q -u "$EXEC" --no-pager | grep -ciE 'watchdog timeout')
ctl POST '/stall?seconds=180' >/dev/null
t0=$(mono_ms)
sleep 200
# After the stall: the same process goes on cycling against the fake again.
cycles=$(journal_count 'cycle done')
deadline=$(($(mono_ms) + 150000))
while [ "$(mono_ms)" -lt "$deadline" ] && [ "$(journal_count 'cycle done')" -le "$cycles" ]; do sleep 2; done
wd1=$(journalctl -q -u "$EXEC" --no-pager | grep -ciE 'watchdog timeout')
check stall-not-killed "$([ "$(prop "$EXEC" ActiveState)" = active ] && [ "$(prop "$EXEC" MainPID)" = "$pid" ] &&
  [ "$(prop "$EXEC" NRestarts)" = "$n0" ] && [ "$wd1" = "$wd0" ] && [ "${deadline_cfg:-999}" -lt $((wd_s / 2)) ] && echo 0 || echo 1)" \
  "fake stalled 180 s; $((($(mono_ms) - t0) / 1000))s later: ActiveState=$(prop "$EXEC" ActiveState), MainPID $pid -> $(prop "$EXEC" MainPID), NRestarts $n0 -> $(prop "$EXEC" NRestarts), 'Watchdog timeout' in the journal $wd0 -> $wd1; cycle_deadline_seconds=${deadline_cfg:-?} < WatchdogSec/2 (WatchdogSec=$wd = ${wd_s}s)"
check stall-cycles-resume "$([ "$(journal_count 'cycle done')" -gt "$cycles" ] && echo 0 || echo 1)" \
  "cycles completed after the stall: $(($(journal_count 'cycle done') - cycles)); during it: $(journalctl -q -u "$EXEC" -o cat --no-pager --since "-5min" | grep -iE 'deadline|timed out|unreachable' | tail -n1 | cut -c1-160)"

# ---------------------------------------------------------------------------------------------
log "== a forced failure delivers the OnFailure= alert"
if [ "$alert_ok" != 0 ]; then
  result onfailure-alert fail "execution.service has no OnFailure= alert unit (see paper-units-onfailure-alert); not forced"
else
  a0=$(alerts_matching 'execution\.service')
  systemctl stop "$EXEC"
  mv "$WATCHLIST" "$WATCHLIST.saved"
  systemctl reset-failed "$EXEC" 2>/dev/null
  systemctl start --no-block "$EXEC"
  state=$(wait_prop "$EXEC" ActiveState 150 failed)
  deadline=$(($(mono_ms) + 120000))
  while [ "$(mono_ms)" -lt "$deadline" ] && [ "$(alerts_matching 'execution\.service')" -le "$a0" ]; do sleep 2; done
  a1=$(alerts_matching 'execution\.service')
  # The alert must also say the start limit was hit (systemd 252/257 keep the first failure's
  # Result, so the unit-failed command concludes it from NRestarts against StartLimitBurst).
  limit_said=$(grep -iE 'execution\.service' "$ALERTS" 2>/dev/null | tail -n1 | grep -c 'start limit')
  check onfailure-alert "$([ "$state" = failed ] && [ "$a1" -gt "$a0" ] && [ "$limit_said" -gt 0 ] && echo 0 || echo 1)" \
    "no watchlist -> the gate refused until the start limit: execution $state Result=$(prop "$EXEC" Result); start limit in the alert: $([ "$limit_said" -gt 0 ] && echo yes || echo NO); alerts naming execution.service at the webhook $a0 -> $a1: $(grep -iE 'execution\.service' "$ALERTS" 2>/dev/null | tail -n1 | cut -c1-200)"
  mv "$WATCHLIST.saved" "$WATCHLIST"
  systemctl reset-failed "$EXEC" 2>/dev/null
  timeout 300 systemctl start execution-restart.service
  wait_prop "$EXEC" ActiveState 120 active >/dev/null
fi

# ---------------------------------------------------------------------------------------------
log "== the end-of-day summary"
# The entered symbol (client id avw-YYYYMMDD-SYMBOL-en-N) must be listed with its stop.
sym=$(cut -d- -f3 <<<"$e_cid")
s0=$(alerts_matching 'day summary')
next=0
if [ -n "$SUMMARY_TIMER" ]; then
  systemctl start "$SUMMARY_TIMER"
  next=$(prop_epoch "$SUMMARY_TIMER" NextElapseUSecRealtime)
fi
if [ "$next" -gt "$(date +%s)" ]; then
  set_clock $((next - 10))
  deadline=$(($(mono_ms) + 180000))
  while [ "$(mono_ms)" -lt "$deadline" ] && [ "$(alerts_matching 'day summary')" -le "$s0" ]; do sleep 2; done
fi
s1=$(alerts_matching 'day summary')
last=$(grep -iE 'day summary' "$ALERTS" 2>/dev/null | tail -n1)
check day-summary "$([ "$next" -gt 0 ] && [ "$s1" -gt "$s0" ] && grep -q "$sym [0-9.]* @ [^ ]* stop" <<<"$last" && echo 0 || echo 1)" \
  "${SUMMARY_TIMER:-no summary timer}: next elapse $( [ "$next" -gt 0 ] && ny "$next" || echo none); summaries at the webhook $s0 -> $s1, want $sym with its stop: $(cut -c1-300 <<<"$last")"

log "webhook log ($ALERTS):"
sed 's/^/#   /' "$ALERTS" 2>/dev/null | cut -c1-300
finish
