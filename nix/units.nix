# The ONE definition of avwap's systemd units: five, and four more for operator alerts when the
# alert-webhook-url credential is given (OnFailure= alerts of scan and execution, the
# end-of-day summary and its timer).
#
# Plain Nix, no nixpkgs: it evaluates with
#   nix-instantiate --eval --strict --json nix/units.nix --argstr binDir /usr/local/bin
# The NixOS module (nix/module.nix) imports it and maps every section onto
# systemd.services / systemd.timers; tools/render-units renders it to the plain unit files in
# dist/systemd/ for non-NixOS hosts (Debian/Ubuntu, systemd >= 249). Change unit settings here
# and nowhere else, then run tools/render-units (CI fails on drift).
#
# Shape of the result: { "<name>.<type>" = { <Section> = { <Key> = value; }; }; }
#   value = string | int            -> one line  Key=value
#         | list of strings/ints    -> one line per element (repeatable keys: ExecStart, ...)
#         | attrset (Environment)   -> one line  Environment="NAME=value" per attribute
# Strings never contain '%' (no systemd specifiers), so NixOS and the rendered files mean the
# same thing. Space-separated lists (After=, Wants=, WantedBy=) are plain strings.
#
# ---------------------------------------------------------------------------------------------
# The daily cycle (all times America/New_York; systemd >= 235 evaluates the zone, DST-safe)
#   08:30 Mon-Fri  scan.timer -> scan.service (oneshot): avwap-scan writes the watchlist.
#                  On success (exit 0) OnSuccess= starts execution-restart.service, so a late or
#                  manual scan also (re)starts execution and the day is never left dead.
#   08:40 Mon-Fri  execution-restart.timer -> execution-restart.service -> restart execution.
#   always         execution.service (Type=notify) runs avwap-execution; ExecStartPre= is the
#                  gate avwap-gate, which refuses a missing or stale watchlist.
#
# Restart / gate policy (why it is built this way)
#   * A failing ExecStartPre IS restarted under Restart=on-failure, and RestartPreventExitStatus=
#     does not apply to it (measured with systemd 252, notes §9). Nothing can tell systemd
#     "restart a crash but not a closed gate", so the gate's retries are bounded instead:
#     RestartSec=10s with StartLimitBurst=5 in StartLimitIntervalSec=10min. A closed gate runs
#     at most 5 times (about 50 s) and the unit then rests in "failed" with the gate's message
#     in the journal: no restart storm. A crash of the running service (signal, watchdog,
#     non-zero exit) is restarted 10 s later, up to 5 starts in 10 minutes; a crash loop beyond
#     that stops too, visibly, instead of hammering the broker. In both cases systemd logs
#     "Start request repeated too quickly"; systemd 252 keeps the first failure's Result
#     (exit-code, signal) rather than start-limit-hit. Both measured on real systemd 252 by the
#     VM scenario (tests/vm/, nix/tests/scenario.sh).
#   * Exit codes of avwap-execution that a restart cannot fix are not restarted:
#     10 config error, 11 state-dir lock held by another instance, 69 not implemented.
#     12 (broker unreachable / credentials refused at startup) is restarted within the bound,
#     because an unreachable broker is usually transient.
#   * Once the start limit is hit, systemd refuses further starts until the interval passes, so
#     execution-restart.service runs `systemctl reset-failed execution.service` before
#     `systemctl restart execution.service`: the morning restart and a successful scan always get
#     a fresh budget of 5 attempts.
#   * execution-restart.service first runs the same gate as ExecCondition=. If today's watchlist
#     is not fresh (holiday, failed scan) the restart is skipped cleanly instead of stopping a
#     running execution only to have the gate refuse the new one: the running process keeps
#     managing open positions (it trades today's watchlist only, so a stale list means no new
#     entries). The issue asks for the gate as ExecStartPre= of execution.service; it is there,
#     and ExecCondition= is used only on the restart helper, never instead of it.
#   * ExecCondition= rather than ExecStartPre= on execution.service itself was rejected: a
#     skipped condition leaves the unit "inactive (condition failed)" with Result=success, which
#     hides a dead trading day from `systemctl --failed`, and it would also swallow a config error.
#   * After=scan.service on execution.service and execution-restart.service: a restart requested
#     while a scan is still running waits for the scan to finish, so the gate sees the new list.
#     scan.service has TimeoutStartSec=20min so a hung scan cannot hold execution back for long.
#
# Scan provider: follows the mode unless given (nix/scan-provider.nix, shared with the module):
# store for sim, alpaca for dry-run / alpaca-paper / alpaca-live. A broker mode with the store
# provider (nothing fills the store: no trading) or the synthetic one is refused, the store
# only with scanStoreFilledExternally = true. With alpaca the scan gets the network, the keys
# and the alert webhook; every other provider runs with PrivateNetwork=yes.
#
# Identity: a static system user/group (default avwap), not DynamicUser=. The state directory
# (watchlist, bar store, execution database, kill switch, lock) is shared by scan and execution,
# must keep stable ownership across runs, and avwap-check / operators in the group read it.
# StateDirectory= creates it (mode 0750) and makes it the only writable path under
# ProtectSystem=strict. UMask=0027 keeps files group-readable, never world-readable.
#
# Secrets: LoadCredential=NAME:PATH only; the binaries read $CREDENTIALS_DIRECTORY/NAME. Names:
# alpaca-key-id, alpaca-secret-key, alpaca-live-account (the live confirmation: the live account
# number), alert-webhook-url. Only credentials that are configured are loaded (a missing source
# file makes systemd refuse to start the unit).
#
# Hardening: every service scores <= 2.0 in `systemd-analyze security --offline=yes`
# (.ci/deploy-checks enforces it). Execution needs AF_INET/AF_INET6 for Alpaca and AF_UNIX for
# sd_notify and journald; the scan needs the network only with the alpaca provider;
# execution-restart needs only AF_UNIX (systemctl talks to PID 1 over /run/systemd/private).
# ---------------------------------------------------------------------------------------------
{
  # Directory holding avwap-scan, avwap-execution and avwap-gate.
  binDir,
  # systemctl used by execution-restart.service (/bin/systemctl exists on merged and unmerged /usr).
  systemctl ? "/bin/systemctl",
  user ? "avwap",
  group ? "avwap",
  # Must be below /var/lib (it becomes StateDirectory=).
  stateDir ? "/var/lib/avwap",
  # TOML configuration passed as AVWAP_CONFIG; null: none (built-in defaults).
  configFile ? null,
  # sim | dry-run | alpaca-paper | alpaca-live, passed as AVWAP_MODE.
  mode ? "sim",
  # store | csv | synthetic | alpaca (network: Alpaca bars, the iShares universe);
  # null: follows mode (nix/scan-provider.nix: store for sim, alpaca for the broker modes).
  scanProvider ? null,
  # true: a broker mode may scan the local bar store, because something outside avwap's units
  # fills it (the operator's own `avwap-scan import` job). Without it that pair is refused.
  scanStoreFilledExternally ? false,
  # false only for nix/module.nix, whose assertion reports a refused provider with the option
  # names (NixOS forces the units while checking its own assertions, so a throw here would
  # hide the assertion's message).
  refuseScanWithoutData ? true,
  # CSV file for scanProvider = "csv" (avwap-scan --csv).
  scanCsvFile ? null,
  scanSchedule ? "Mon..Fri 08:30 America/New_York",
  restartSchedule ? "Mon..Fri 08:40 America/New_York",
  # The end-of-day summary alert (only with the alert-webhook-url credential): after the close
  # (16:00, 13:00 on early closes), late enough for the last cycle's fills.
  summarySchedule ? "Mon..Fri 16:15 America/New_York",
  # { alpaca-key-id = "/run/keys/alpaca-key-id"; ... }; null values are ignored.
  credentials ? { },
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    elem
    filter
    isString
    stringLength
    substring
    throw
    ;

  modes = [
    "sim"
    "dry-run"
    "alpaca-paper"
    "alpaca-live"
  ];
  providers = [
    "store"
    "csv"
    "synthetic"
    "alpaca"
  ];
  credentialNames = [
    "alpaca-key-id"
    "alpaca-secret-key"
    "alpaca-live-account"
    "alert-webhook-url"
  ];

  scanRule = import ./scan-provider.nix;
  provider = if scanProvider == null then scanRule.defaultFor mode else scanProvider;
  scanProblem = scanRule.problem {
    inherit mode scanStoreFilledExternally;
    scanProvider = provider;
    names = {
      mode = "mode";
      scanProvider = "scanProvider";
      scanStoreFilledExternally = "scanStoreFilledExternally";
    };
  };

  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  isAbsolute = p: isString p && hasPrefix "/" p;
  varLib = "/var/lib/";
  stateDirectory = substring (stringLength varLib) (stringLength stateDir) stateDir;

  givenCredentials = filter (n: credentials.${n} != null) (attrNames credentials);
  badCredentialNames = filter (n: !(elem n credentialNames)) givenCredentials;
  storeCredentials = filter (n: hasPrefix "/nix/store/" credentials.${n}) givenCredentials;
  relativeCredentials = filter (n: !(isAbsolute credentials.${n})) givenCredentials;

  check =
    cond: msg: rest:
    if cond then rest else throw "nix/units.nix: ${msg}";
  checks =
    v:
    check (isAbsolute binDir) "binDir must be an absolute path, got ${toString binDir}" (
      check (elem mode modes) "mode must be one of ${concatStringsSep ", " modes}, got ${mode}" (
        check (elem provider providers)
          "scanProvider must be one of ${concatStringsSep ", " providers}, got ${provider}"
          (
            check (provider != "csv" || isAbsolute scanCsvFile)
              "scanProvider = \"csv\" needs scanCsvFile (an absolute path)"
              (
                check (hasPrefix varLib stateDir && stringLength stateDir > stringLength varLib)
                  "stateDir must be below ${varLib} (it becomes StateDirectory=), got ${stateDir}"
                  (
                    check (configFile == null || isAbsolute configFile) "configFile must be an absolute path" (
                      check (badCredentialNames == [ ])
                        "unknown credential(s) ${concatStringsSep ", " badCredentialNames}; known: ${concatStringsSep ", " credentialNames}"
                        (
                          check (relativeCredentials == [ ])
                            "credential path(s) must be absolute: ${concatStringsSep ", " relativeCredentials}"
                            (
                              check (storeCredentials == [ ])
                                "credential(s) ${concatStringsSep ", " storeCredentials} point into the Nix store (world-readable); keep secrets outside /nix/store"
                                (check (!refuseScanWithoutData || scanProblem == null) "${toString scanProblem}" v)
                            )
                        )
                    )
                  )
              )
          )
      )
    );

  gate = "${binDir}/avwap-gate";
  scanNeedsNetwork = provider == "alpaca";
  # Operator alerts outside the trading loop exist only where a webhook is configured (a unit
  # that could only fail for want of one would raise nothing but noise).
  alertsConfigured = elem "alert-webhook-url" givenCredentials;
  # [Unit] OnFailure= of a service: its alert unit, when alerts are configured.
  onFailure = alertUnit: if alertsConfigured then { OnFailure = alertUnit; } else { };

  # `avwap-execution alert …` as the avwap user: the configuration ([alerts]) and, for the
  # summary, the state directory's journal (read-only); the network for the webhook.
  alertService = description: command: {
    Unit = {
      Description = description;
      Wants = "network-online.target";
      After = "network-online.target";
    };
    Service =
      hardening
      // asAvwap
      // network
      // {
        Type = "oneshot";
        ExecStart = [ "${binDir}/avwap-execution alert ${command}" ];
        # Delivery waits at most 10 s; the rest is margin for a slow start.
        TimeoutStartSec = "2min";
        SyslogIdentifier = "avwap-alert";
        LoadCredential = loadCredentials [ "alert-webhook-url" ];
      };
  };
  # systemd >= 251 starts an OnFailure= unit with MONITOR_UNIT, MONITOR_SERVICE_RESULT,
  # MONITOR_EXIT_CODE and MONITOR_EXIT_STATUS of the failed unit (what the alert reports); the
  # unit is named on the command line as well, so one alert unit per service needs no
  # specifier, and a scan failing while execution fails raises both alerts.
  alertUnits =
    if alertsConfigured then
      {
        "execution-failed-alert.service" =
          alertService "avwap: alert that execution.service failed (or hit its start limit)"
            "unit-failed execution.service";
        "scan-failed-alert.service" =
          alertService "avwap: alert that scan.service failed" "unit-failed scan.service";
        "day-summary.service" =
          alertService "avwap: end-of-day summary alert (entries, exits, P&L, open positions)"
            "summary";
        "day-summary.timer" = {
          Unit = {
            Description = "avwap end-of-day summary schedule (${summarySchedule})";
          };
          Timer = {
            OnCalendar = summarySchedule;
            AccuracySec = "1s";
            Unit = "day-summary.service";
          };
          Install = {
            WantedBy = "timers.target";
          };
        };
      }
    else
      { };

  loadCredentials = names: map (n: "${n}:${credentials.${n}}") (filter (n: elem n names) givenCredentials);

  environment = {
    AVWAP_STATE_DIR = stateDir;
    AVWAP_MODE = mode;
  }
  // (if configFile == null then { } else { AVWAP_CONFIG = configFile; });

  # Sandboxing shared by all three services.
  hardening = {
    NoNewPrivileges = "yes";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    ProtectSystem = "strict";
    ProtectHome = "yes";
    PrivateTmp = "yes";
    PrivateDevices = "yes";
    DevicePolicy = "closed";
    PrivateIPC = "yes";
    PrivateMounts = "yes";
    ProtectClock = "yes";
    ProtectControlGroups = "yes";
    ProtectHostname = "yes";
    ProtectKernelLogs = "yes";
    ProtectKernelModules = "yes";
    ProtectKernelTunables = "yes";
    ProtectProc = "invisible";
    ProcSubset = "pid";
    RestrictNamespaces = "yes";
    RestrictRealtime = "yes";
    RestrictSUIDSGID = "yes";
    LockPersonality = "yes";
    MemoryDenyWriteExecute = "yes";
    RemoveIPC = "yes";
    KeyringMode = "private";
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged @resources"
    ];
    # A forbidden system call fails with EPERM instead of killing the process.
    SystemCallErrorNumber = "EPERM";
    UMask = "0027";
  };

  # The avwap user's services: the state directory and the user namespace.
  asAvwap = {
    User = user;
    Group = group;
    PrivateUsers = "yes";
    StateDirectory = stateDirectory;
    StateDirectoryMode = "0750";
    Environment = environment;
  };

  network = {
    RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6";
  };
  noNetwork = {
    PrivateNetwork = "yes";
    IPAddressDeny = "any";
    RestrictAddressFamilies = "AF_UNIX";
  };

  units = {
    "execution.service" = {
      Unit = {
        Description = "avwap execution: trades today's watchlist (mode ${mode})";
        Wants = "network-online.target";
        After = "network-online.target scan.service";
        StartLimitIntervalSec = "10min";
        StartLimitBurst = 5;
      }
      // onFailure "execution-failed-alert.service";
      Service =
        hardening
        // asAvwap
        // network
        // {
          Type = "notify";
          NotifyAccess = "main";
          # The gate: a missing or stale watchlist stops the start here (exit 1..5, 10).
          ExecStartPre = [ gate ];
          ExecStart = [ "${binDir}/avwap-execution" ];
          Restart = "on-failure";
          RestartSec = "10s";
          # 10 config error, 11 lock held, 69 not implemented: a restart cannot fix them.
          RestartPreventExitStatus = "10 11 69";
          # Startup reconciles with the broker before READY=1 (EXTEND_TIMEOUT_USEC may extend).
          TimeoutStartSec = "5min";
          # SIGTERM: finish the current step, persist, exit 0.
          TimeoutStopSec = "2min";
          KillMode = "mixed";
          WatchdogSec = "60s";
          SyslogIdentifier = "avwap-execution";
          LogExtraFields = "AVWAP_MODE=${mode}";
          LoadCredential = loadCredentials credentialNames;
        };
      Install = {
        WantedBy = "multi-user.target";
      };
    };

    "scan.service" = {
      Unit = {
        Description = "avwap scan: writes today's watchlist (provider ${provider})";
        OnSuccess = "execution-restart.service";
      }
      // onFailure "scan-failed-alert.service"
      // (
        if scanNeedsNetwork then
          {
            Wants = "network-online.target";
            After = "network-online.target";
          }
        else
          { }
      );
      Service =
        hardening
        // asAvwap
        // (if scanNeedsNetwork then network else noNetwork)
        // {
          Type = "oneshot";
          ExecStart = [
            (
              "${binDir}/avwap-scan --provider ${provider}"
              + (if provider == "csv" then " --csv ${scanCsvFile}" else "")
            )
          ];
          TimeoutStartSec = "20min";
          SyslogIdentifier = "avwap-scan";
          # The networked scan needs the keys for Alpaca's data API and may send its
          # "scan complete/failed" alert; without network the webhook is unreachable anyway.
          LoadCredential = loadCredentials (
            if scanNeedsNetwork then
              [
                "alpaca-key-id"
                "alpaca-secret-key"
                "alert-webhook-url"
              ]
            else
              [ ]
          );
        };
    };

    "scan.timer" = {
      Unit = {
        Description = "avwap scan schedule (${scanSchedule})";
      };
      Timer = {
        OnCalendar = scanSchedule;
        Persistent = "true";
        AccuracySec = "1s";
        Unit = "scan.service";
      };
      Install = {
        WantedBy = "timers.target";
      };
    };

    "execution-restart.service" = {
      Unit = {
        Description = "avwap: restart execution for the new session if today's watchlist is fresh";
        After = "scan.service";
      };
      # Runs as root (systemctl talks to PID 1) with no capabilities; Group= lets the gate read
      # the state directory (mode 0750) without CAP_DAC_READ_SEARCH.
      Service =
        hardening
        // noNetwork
        // {
          Type = "oneshot";
          Group = group;
          Environment = environment;
          # Skip (unit stays successful) when the gate would refuse the new process anyway.
          ExecCondition = [ gate ];
          ExecStart = [
            "${systemctl} --no-ask-password reset-failed execution.service"
            "${systemctl} --no-ask-password restart execution.service"
          ];
          TimeoutStartSec = "10min";
          SyslogIdentifier = "avwap-restart";
        };
    };

    "execution-restart.timer" = {
      Unit = {
        Description = "avwap execution restart schedule (${restartSchedule})";
      };
      Timer = {
        OnCalendar = restartSchedule;
        Persistent = "true";
        AccuracySec = "1s";
        Unit = "execution-restart.service";
      };
      Install = {
        WantedBy = "timers.target";
      };
    };
  };
in
checks (units // alertUnits)
