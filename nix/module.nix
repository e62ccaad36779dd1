# NixOS module services.avwap: the avwap trading system under systemd.
#
# The five units come from nix/units.nix (the one definition, shared with dist/systemd/);
# this module only supplies the parameters and maps each section onto NixOS options.
# The flake's nixosModules.default imports this file and sets `package` to the flake's build.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    filterAttrs
    hasPrefix
    hasSuffix
    literalExpression
    mapAttrs'
    mkEnableOption
    mkIf
    mkOption
    nameValuePair
    optionalString
    removeSuffix
    types
    ;

  cfg = config.services.avwap;
  # The scan provider a mode gets by default, and when a mode/provider pair is refused: one
  # rule, shared with nix/units.nix (tools/render-units, dist/systemd/).
  scanRule = import ./scan-provider.nix;
  scanProblem = scanRule.problem {
    inherit (cfg) mode scanProvider scanStoreFilledExternally;
    names = {
      mode = "services.avwap.mode";
      scanProvider = "services.avwap.scanProvider";
      scanStoreFilledExternally = "services.avwap.scanStoreFilledExternally";
    };
  };
  settingsFormat = pkgs.formats.toml { };

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

  # Option name -> systemd credential name ($CREDENTIALS_DIRECTORY/<name>).
  credentialNames = {
    alpacaKeyIdFile = "alpaca-key-id";
    alpacaSecretKeyFile = "alpaca-secret-key";
    alpacaLiveAccountFile = "alpaca-live-account";
    alertWebhookUrlFile = "alert-webhook-url";
  };
  credentialPaths = lib.mapAttrs' (
    opt: name: nameValuePair name cfg.credentials.${opt}
  ) credentialNames;
  inStore = p: hasPrefix "${builtins.storeDir}/" p || p == builtins.storeDir;
  storeCredentials = lib.attrNames (filterAttrs (_: p: p != null && inStore p) credentialPaths);

  # The TOML file: the user's settings plus state_dir and mode, which the module owns (the units
  # also pass them as AVWAP_STATE_DIR / AVWAP_MODE, which win over the file).
  rawConfigFile = settingsFormat.generate "avwap.toml" (
    cfg.settings
    // {
      state_dir = cfg.stateDir;
      mode = cfg.mode;
    }
  );
  # Like attic's checkedConfigFile: reject unknown keys and bad values at build time. avwap-gate
  # loads the configuration first (exit 10 on any config error) and only then looks at the
  # watchlist, which here does not exist (exit 1).
  canRunHostBinaries = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
  configFile = pkgs.runCommand "avwap.toml" { } ''
    ${optionalString canRunHostBinaries ''
      rc=0
      ${cfg.package}/bin/avwap-gate --config ${rawConfigFile} \
        --state-dir "$TMPDIR" --watchlist "$TMPDIR/none.csv" 2>err.txt || rc=$?
      if [ "$rc" = 10 ]; then
        echo "services.avwap.settings: avwap rejects the generated configuration:" >&2
        cat err.txt >&2
        exit 1
      fi
    ''}
    cp ${rawConfigFile} $out
  '';

  units = import ./units.nix {
    binDir = "${cfg.package}/bin";
    systemctl = "${config.systemd.package}/bin/systemctl";
    inherit (cfg)
      user
      group
      stateDir
      mode
      scanProvider
      scanStoreFilledExternally
      ;
    # The assertion below reports a refused provider with the option names; NixOS evaluates
    # the units while checking its own assertions, so units.nix must not throw first.
    refuseScanWithoutData = false;
    # A missing CSV is reported by the assertion below; units.nix must not throw first.
    scanCsvFile =
      if cfg.scanProvider == "csv" && cfg.scanCsvFile == null then
        "/services.avwap.scanCsvFile-is-not-set"
      else
        cfg.scanCsvFile;
    configFile = "${configFile}";
    scanSchedule = cfg.schedules.scan;
    restartSchedule = cfg.schedules.restart;
    summarySchedule = cfg.schedules.summary;
    # Secrets inside the store are reported by the assertions below, never passed on.
    credentials = filterAttrs (_: p: p != null && !inStore p) credentialPaths;
  };

  words = s: builtins.filter (w: builtins.isString w && w != "") (builtins.split " +" s);

  # [Unit] keys that have a NixOS list option (so other modules can add to them).
  unitListKeys = {
    After = "after";
    Before = "before";
    Wants = "wants";
    Requires = "requires";
    OnSuccess = "onSuccess";
    OnFailure = "onFailure";
  };

  toNixos =
    file: sections:
    let
      unit = sections.Unit or { };
      install = sections.Install or { };
      unexpected = lib.attrNames (
        removeAttrs sections [
          "Unit"
          "Service"
          "Timer"
          "Install"
        ]
      );
    in
    assert lib.assertMsg (unexpected == [ ]) "nix/units.nix: ${file}: unexpected sections ${toString unexpected}";
    assert lib.assertMsg (
      lib.attrNames install == [ ] || lib.attrNames install == [ "WantedBy" ]
    ) "nix/units.nix: ${file}: only WantedBy= is supported in [Install]";
    {
      description = unit.Description or "";
      unitConfig = removeAttrs unit ([ "Description" ] ++ lib.attrNames unitListKeys);
      wantedBy = words (install.WantedBy or "");
    }
    // lib.mapAttrs' (key: opt: nameValuePair opt (words (unit.${key} or ""))) unitListKeys
    // lib.optionalAttrs (sections ? Service) {
      environment = sections.Service.Environment or { };
      serviceConfig = removeAttrs sections.Service [ "Environment" ];
      # A deploy (nixos-rebuild switch) never restarts these: execution keeps trading through a
      # deploy and picks up the new build at the next 08:40 restart; the oneshots are started
      # only by their timers (or by hand), never as a side effect of switching.
      restartIfChanged = false;
    }
    // lib.optionalAttrs (sections ? Timer) { timerConfig = sections.Timer; };

  unitsOfType =
    suffix:
    mapAttrs' (file: sections: nameValuePair (removeSuffix suffix file) (toNixos file sections)) (
      filterAttrs (file: _: hasSuffix suffix file) units
    );

  credentialOption =
    name: what:
    mkOption {
      type = types.nullOr (types.strMatching "/.*");
      default = null;
      example = "/run/keys/${name}";
      description = ''
        Absolute path of a file holding ${what}. It is handed to the services with
        `LoadCredential=${name}:<path>` and read by avwap as
        `$CREDENTIALS_DIRECTORY/${name}`. Give a path as a string (e.g. managed by agenix or
        sops-nix), never a Nix path literal: the file must not be copied into the world-readable
        Nix store, and an assertion rejects paths inside it.
      '';
    };
in
{
  options.services.avwap = {
    enable = mkEnableOption "avwap, the Anchored-VWAP swing-trading system (scan, execution, gate, timers)";

    package = lib.mkPackageOption pkgs "avwap" {
      extraDescription = ''
        All four binaries. The flake's `nixosModules.default` sets it (with `mkDefault`) to the
        flake's own build, so `pkgs.avwap` (the flake's `overlays.default`) is needed only when
        this file is imported without the flake.
      '';
    };

    mode = mkOption {
      type = types.enum modes;
      default = "sim";
      description = ''
        Execution mode, passed as `AVWAP_MODE` and written into the configuration file:
        `sim` (built-in simulated broker, no credentials), `dry-run` (real market data, orders
        only recorded), `alpaca-paper`, `alpaca-live` (real money: also needs
        `credentials.alpacaLiveAccountFile`, the separate live confirmation).
      '';
    };

    settings = mkOption {
      type = settingsFormat.type;
      default = { };
      example = literalExpression ''
        {
          scan.max_candidates = 20;
          scan.regime.benchmark = "SPY";
        }
      '';
      description = ''
        avwap configuration (TOML, see examples/avwap.toml in the source for every key and its
        default). Written to the Nix store and passed as `AVWAP_CONFIG`; unknown keys are rejected
        at build time. `state_dir` and `mode` are set from {option}`services.avwap.stateDir` and
        {option}`services.avwap.mode`. Never put secrets here: use the credential options.
      '';
    };

    unitDefinitions = mkOption {
      type = types.attrs;
      internal = true;
      readOnly = true;
      default = units;
      defaultText = literalExpression "import ./units.nix { ... }";
      description = "The evaluated nix/units.nix (for tests: the NixOS units must carry every line of it).";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = literalExpression "the generated, checked avwap.toml";
      description = "The generated configuration file (also linked as /etc/avwap/avwap.toml).";
    };

    scanProvider = mkOption {
      type = types.enum providers;
      default = scanRule.defaultFor cfg.mode;
      defaultText = literalExpression ''if config.services.avwap.mode == "sim" then "store" else "alpaca"'';
      description = ''
        Where `avwap-scan` gets daily bars (`--provider`): `alpaca` (network; the Russell 3000
        members from {option}`services.avwap.settings` `scan.universe.source`, iShares IWV by
        default, cached in the state directory, Alpaca's assets as the last fallback; daily
        bars topped up from Alpaca's market data into the bar store), `store` (only the SQLite
        bar store in the state directory, filled with `avwap-scan import`), `csv` (the file in
        {option}`services.avwap.scanCsvFile`) or `synthetic` (a seeded synthetic market;
        offline tests only, not real data). Only `alpaca` gives the scan network access and
        the Alpaca keys.

        The default follows {option}`services.avwap.mode`: `store` for `sim`, `alpaca` for the
        broker modes. A broker mode with `synthetic` is refused, and with `store` unless
        {option}`services.avwap.scanStoreFilledExternally` is set: nothing else fills the store,
        so the scan would fail every morning and nothing would trade.
      '';
    };

    scanStoreFilledExternally = mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = ''
        State that something outside avwap's units keeps the bar store current (for example
        your own timer running `avwap-scan import` with bars from another vendor), so that a
        broker mode (`dry-run`, `alpaca-paper`, `alpaca-live`) may use
        `scanProvider = "store"`. Without it that combination is refused. The store scan has
        no network access.
      '';
    };

    scanCsvFile = mkOption {
      type = types.nullOr (types.strMatching "/.*");
      default = null;
      description = "Long-format bar CSV for `scanProvider = \"csv\"` (`avwap-scan --csv`).";
    };

    schedules = {
      scan = mkOption {
        type = types.str;
        default = "Mon..Fri 08:30 America/New_York";
        description = ''
          `OnCalendar=` of scan.timer (systemd.time(7); a time zone suffix is evaluated by
          systemd, DST-safe). The binaries know the NYSE calendar; on a holiday the scan exits 0.
        '';
      };
      restart = mkOption {
        type = types.str;
        default = "Mon..Fri 08:40 America/New_York";
        description = "`OnCalendar=` of execution-restart.timer.";
      };
      summary = mkOption {
        type = types.str;
        default = "Mon..Fri 16:15 America/New_York";
        description = ''
          `OnCalendar=` of day-summary.timer, the end-of-day summary alert. It exists only with
          `alertWebhookUrlFile` (as do the `OnFailure=` alerts of scan and execution).
        '';
      };
    };

    user = mkOption {
      type = types.str;
      default = "avwap";
      description = ''
        System user of the scan and execution services (created when left at "avwap"). A static
        user rather than DynamicUser=, so the shared state directory keeps stable ownership and
        operators in {option}`services.avwap.group` can read it (avwap-check).
      '';
    };

    group = mkOption {
      type = types.str;
      default = "avwap";
      description = "Group of the services and the state directory (created when left at \"avwap\").";
    };

    stateDir = mkOption {
      type = types.strMatching "/var/lib/[^/].*";
      default = "/var/lib/avwap";
      description = ''
        State directory (watchlist, bar store, execution database, kill switch, lock). Must be
        below /var/lib: it is managed with systemd's `StateDirectory=` (mode 0750).
        `touch <stateDir>/KILL_SWITCH` halts new entries.
      '';
    };

    credentials = {
      alpacaKeyIdFile = credentialOption "alpaca-key-id" "the Alpaca API key id";
      alpacaSecretKeyFile = credentialOption "alpaca-secret-key" "the Alpaca API secret key";
      alpacaLiveAccountFile = credentialOption "alpaca-live-account" "the live account number: the second, separate confirmation that `mode = \"alpaca-live\"` requires";
      alertWebhookUrlFile = credentialOption "alert-webhook-url" "the alert webhook URL";
    };
  };

  config = mkIf cfg.enable {
    assertions =
      let
        keysSet =
          cfg.credentials.alpacaKeyIdFile != null && cfg.credentials.alpacaSecretKeyFile != null;
      in
      [
        {
          assertion = storeCredentials == [ ];
          message = "services.avwap.credentials: ${toString storeCredentials} point(s) into the Nix store, which is world-readable. Keep secrets outside /nix/store (e.g. /run/keys, agenix, sops-nix) and give the path as a string.";
        }
        {
          assertion = cfg.mode != "alpaca-live" || cfg.credentials.alpacaLiveAccountFile != null;
          message = "services.avwap: mode = \"alpaca-live\" trades real money and requires the separate live confirmation: set services.avwap.credentials.alpacaLiveAccountFile (a file holding the live account number).";
        }
        {
          assertion =
            !(builtins.elem cfg.mode [
              "dry-run"
              "alpaca-paper"
              "alpaca-live"
            ])
            || keysSet;
          message = "services.avwap: mode = \"${cfg.mode}\" talks to Alpaca: set services.avwap.credentials.alpacaKeyIdFile and alpacaSecretKeyFile.";
        }
        {
          assertion = cfg.scanProvider != "alpaca" || keysSet;
          message = "services.avwap: scanProvider = \"alpaca\" needs services.avwap.credentials.alpacaKeyIdFile and alpacaSecretKeyFile.";
        }
        {
          assertion = scanProblem == null;
          message = "services.avwap: ${toString scanProblem}";
        }
        {
          assertion = cfg.scanProvider != "csv" || cfg.scanCsvFile != null;
          message = "services.avwap: scanProvider = \"csv\" needs services.avwap.scanCsvFile.";
        }
        {
          # execution.service has WatchdogSec=60s (nix/units.nix); the service itself also
          # refuses a deadline that is not below half of it, but at deploy time is better.
          assertion = (cfg.settings.execution.cycle_deadline_seconds or 20) < 30;
          message = "services.avwap.settings.execution.cycle_deadline_seconds must be below 30 (half of execution.service's WatchdogSec=60s): a cycle against a hung broker could otherwise outlast the watchdog.";
        }
        {
          assertion = !(cfg.settings ? state_dir) && !(cfg.settings ? mode);
          message = "services.avwap.settings: do not set state_dir or mode there; use services.avwap.stateDir and services.avwap.mode.";
        }
      ];

    users.users = mkIf (cfg.user == "avwap") {
      avwap = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.stateDir;
        description = "avwap trading system";
      };
    };
    users.groups = mkIf (cfg.group == "avwap") { avwap = { }; };

    # The state directory exists from the switch on, not only from the first start of a unit
    # (StateDirectory= creates it then, with the same owner and mode): `avwap-scan import` as
    # the avwap user and avwap-check work before the first scan.
    systemd.tmpfiles.rules = [ "d ${cfg.stateDir} 0750 ${cfg.user} ${cfg.group} - -" ];

    # avwap-gate, avwap-check and avwap-scan import for operators.
    environment.systemPackages = [ cfg.package ];
    environment.etc."avwap/avwap.toml".source = configFile;

    systemd.services = unitsOfType ".service";
    systemd.timers = unitsOfType ".timer";
  };
}
