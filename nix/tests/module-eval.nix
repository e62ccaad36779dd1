# Evaluation-only checks of the NixOS module (no VM): assertions fire when they must and only
# then, the scan provider follows the mode, and every line of nix/units.nix appears in the unit
# text NixOS generates, so the module and the dist/systemd/ files cannot drift apart. Wired into
# the flake's checks as `module-eval`.
{
  pkgs,
  self,
  nixpkgs,
}:
let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;

  eval =
    extra:
    nixpkgs.lib.nixosSystem {
      modules = [
        self.nixosModules.default
        {
          nixpkgs.hostPlatform = system;
          boot.isContainer = true;
          system.stateVersion = "26.05";
          services.avwap.enable = true;
        }
        { services.avwap = extra; }
      ];
    };

  keys = {
    alpacaKeyIdFile = "/run/keys/alpaca-key-id";
    alpacaSecretKeyFile = "/run/keys/alpaca-secret-key";
  };
  live = {
    mode = "alpaca-live";
    credentials = keys // {
      alpacaLiveAccountFile = "/run/keys/alpaca-live-account";
    };
  };
  paper = {
    mode = "alpaca-paper";
    credentials = keys;
  };

  # Every configuration under test. Each is evaluated once: the checks below only read
  # `configs.<case>`, and the values of an attribute set are evaluated at most once.
  configs = lib.mapAttrs (_: extra: (eval extra).config) {
    default = { };
    inherit live paper;
    dry-run = {
      mode = "dry-run";
      credentials = keys;
    };
    live-without-confirmation = live // {
      credentials = keys;
    };
    paper-without-keys = {
      mode = "alpaca-paper";
    };
    secret-in-store = {
      mode = "alpaca-paper";
      credentials = keys // {
        alpacaSecretKeyFile = "${builtins.storeDir}/00000000000000000000000000000000-alpaca-secret-key";
      };
    };
    mode-in-settings = {
      settings.mode = "alpaca-live";
    };
    csv-without-file = {
      scanProvider = "csv";
    };
    paper-store = paper // {
      scanProvider = "store";
    };
    paper-store-filled-externally = paper // {
      scanProvider = "store";
      scanStoreFilledExternally = true;
    };
    live-synthetic = live // {
      scanProvider = "synthetic";
    };
  };

  failedAssertions =
    name: map (a: a.message) (lib.filter (a: !a.assertion) configs.${name}.assertions);

  expectOk =
    name:
    let
      msgs = failedAssertions name;
    in
    lib.optional (msgs != [ ]) "${name}: unexpected assertion(s): ${builtins.toJSON msgs}";

  expectAssertion =
    name: fragment:
    let
      msgs = failedAssertions name;
    in
    lib.optional (
      !(lib.any (lib.hasInfix fragment) msgs)
    ) "${name}: expected an assertion containing '${fragment}', got ${builtins.toJSON msgs}";

  # Every Key=value line of nix/units.nix must be in the NixOS unit text.
  linesOf =
    sections:
    lib.concatLists (
      lib.mapAttrsToList (
        _section: kvs:
        lib.concatLists (
          lib.mapAttrsToList (
            key: value:
            if builtins.isAttrs value then
              lib.mapAttrsToList (n: v: "Environment=${builtins.toJSON "${n}=${v}"}") value
            else
              map (v: "${key}=${toString v}") (lib.toList value)
          ) kvs
        )
      ) sections
    );
  unitLinesMissing =
    name:
    let
      config = configs.${name};
      defs = config.services.avwap.unitDefinitions;
    in
    lib.concatLists (
      lib.mapAttrsToList (
        unit: sections:
        let
          text = "\n" + config.systemd.units.${unit}.text;
        in
        map (l: "${name}: ${unit}: NixOS unit lacks the line '${l}'") (
          lib.filter (l: !(lib.hasInfix "\n${l}\n" text)) (linesOf sections)
        )
      ) defs
    )
    ++ lib.optional (
      lib.attrNames defs != [
        "execution-restart.service"
        "execution-restart.timer"
        "execution.service"
        "scan.service"
        "scan.timer"
      ]
    ) "${name}: unexpected unit set ${toString (lib.attrNames defs)}";

  hasLine =
    name: unit: line:
    lib.hasInfix "\n${line}\n" ("\n" + configs.${name}.systemd.units.${unit}.text);
  expectLine =
    name: unit: line:
    lib.optional (!hasLine name unit line) "${name}: ${unit} lacks '${line}'";
  expectNoLine =
    name: unit: line:
    lib.optional (hasLine name unit line) "${name}: ${unit} must not have '${line}'";
  expectEqual =
    name: what: got: want:
    lib.optional (
      got != want
    ) "${name}: ${what} is ${builtins.toJSON got}, want ${builtins.toJSON want}";

  scanExec =
    name: provider:
    "ExecStart=${configs.${name}.services.avwap.package}/bin/avwap-scan --provider ${provider}";

  failures =
    expectOk "default"
    ++ expectOk "live"
    ++ expectOk "paper"
    ++ expectOk "dry-run"
    ++ expectOk "paper-store-filled-externally"
    ++ expectAssertion "live-without-confirmation" "requires the separate live confirmation"
    ++ expectAssertion "paper-without-keys" "talks to Alpaca"
    ++ expectAssertion "secret-in-store" "point(s) into the Nix store"
    ++ expectAssertion "mode-in-settings" "do not set state_dir or mode"
    ++ expectAssertion "csv-without-file" "needs services.avwap.scanCsvFile"
    ++ expectAssertion "paper-store" "services.avwap.scanStoreFilledExternally = true"
    ++ expectAssertion "live-synthetic" "invents its bars"
    ++ unitLinesMissing "default"
    ++ unitLinesMissing "live"
    ++ unitLinesMissing "paper"
    ++ unitLinesMissing "paper-store-filled-externally"
    # The scan provider follows the mode; only the alpaca scan has network and the keys.
    ++ expectEqual "default" "scanProvider" configs.default.services.avwap.scanProvider "store"
    ++ expectEqual "paper" "scanProvider" configs.paper.services.avwap.scanProvider "alpaca"
    ++ expectEqual "dry-run" "scanProvider" configs.dry-run.services.avwap.scanProvider "alpaca"
    ++ expectEqual "live" "scanProvider" configs.live.services.avwap.scanProvider "alpaca"
    ++ expectLine "default" "scan.service" (scanExec "default" "store")
    ++ expectLine "default" "scan.service" "PrivateNetwork=yes"
    ++ expectLine "paper" "scan.service" (scanExec "paper" "alpaca")
    ++ expectNoLine "paper" "scan.service" "PrivateNetwork=yes"
    ++ expectLine "paper" "scan.service" "LoadCredential=alpaca-key-id:/run/keys/alpaca-key-id"
    ++ expectLine "paper" "scan.service" "LoadCredential=alpaca-secret-key:/run/keys/alpaca-secret-key"
    ++ expectLine "paper" "execution.service" "Environment=\"AVWAP_MODE=alpaca-paper\""
    ++ expectLine "paper-store-filled-externally" "scan.service" (
      scanExec "paper-store-filled-externally" "store"
    )
    ++ expectLine "paper-store-filled-externally" "scan.service" "PrivateNetwork=yes"
    ++ expectLine "default" "execution.service" "X-RestartIfChanged=false"
    ++ expectLine "default" "scan.timer" "OnCalendar=Mon..Fri 08:30 America/New_York"
    ++ expectLine "default" "execution-restart.timer" "OnCalendar=Mon..Fri 08:40 America/New_York"
    ++ expectLine "live" "execution.service" "LoadCredential=alpaca-live-account:/run/keys/alpaca-live-account"
    # The flake's module supplies the package (mkPackageOption's pkgs.avwap is not needed).
    ++ expectEqual "default" "the package" configs.default.services.avwap.package.outPath
      self.packages.${system}.default.outPath
    # The state directory exists from the switch on (tmpfiles), not only after a unit's start.
    ++ lib.optional (
      !(lib.elem "d /var/lib/avwap 0750 avwap avwap - -" configs.default.systemd.tmpfiles.rules)
    ) "default: no tmpfiles rule creating /var/lib/avwap"
    ++ lib.optional (
      !configs.default.users.users.avwap.isSystemUser
    ) "default: no avwap system user";
in
pkgs.runCommand "avwap-module-eval"
  {
    failures = builtins.unsafeDiscardStringContext (lib.concatStringsSep "\n" failures);
  }
  ''
    if [ -n "$failures" ]; then
      printf '%s\n' "$failures" >&2
      exit 1
    fi
    echo "module evaluation checks passed" > $out
  ''
