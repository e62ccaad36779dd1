# Evaluation-only checks of the NixOS module (no VM): assertions fire when they must and only
# then, and every line of nix/units.nix appears in the unit text NixOS generates, so the module
# and the dist/systemd/ files cannot drift apart. Wired into the flake's checks as `module-eval`.
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

  failedAssertions =
    extra: map (a: a.message) (lib.filter (a: !a.assertion) (eval extra).config.assertions);

  expectOk =
    name: extra:
    let
      msgs = failedAssertions extra;
    in
    lib.optional (msgs != [ ]) "${name}: unexpected assertion(s): ${builtins.toJSON msgs}";

  expectAssertion =
    name: extra: fragment:
    let
      msgs = failedAssertions extra;
    in
    lib.optional (
      !(lib.any (lib.hasInfix fragment) msgs)
    ) "${name}: expected an assertion containing '${fragment}', got ${builtins.toJSON msgs}";

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
    name: extra:
    let
      config = (eval extra).config;
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

  textOf = extra: unit: (eval extra).config.systemd.units.${unit}.text;
  expectLine =
    name: extra: unit: line:
    lib.optional (
      !(lib.hasInfix "\n${line}\n" ("\n" + textOf extra unit))
    ) "${name}: ${unit} lacks '${line}'";

  failures =
    expectOk "default (sim)" { }
    ++ expectOk "alpaca-live with confirmation" live
    ++ expectAssertion "alpaca-live without confirmation" (
      live // { credentials = keys; }
    ) "requires the separate live confirmation"
    ++ expectAssertion "alpaca-paper without keys" { mode = "alpaca-paper"; } "talks to Alpaca"
    ++ expectAssertion "secret in the Nix store" {
      mode = "alpaca-paper";
      credentials = keys // {
        alpacaSecretKeyFile = "${builtins.storeDir}/00000000000000000000000000000000-alpaca-secret-key";
      };
    } "point(s) into the Nix store"
    ++ expectAssertion "mode in settings" { settings.mode = "alpaca-live"; } "do not set state_dir or mode"
    ++ expectAssertion "csv without file" { scanProvider = "csv"; } "needs services.avwap.scanCsvFile"
    ++ unitLinesMissing "default (sim)" { }
    ++ unitLinesMissing "alpaca-live" live
    ++ expectLine "default" { } "execution.service" "X-RestartIfChanged=false"
    ++ expectLine "default" { } "scan.timer" "OnCalendar=Mon..Fri 08:30 America/New_York"
    ++ expectLine "default" { } "execution-restart.timer" "OnCalendar=Mon..Fri 08:40 America/New_York"
    ++ expectLine "alpaca-live" live "execution.service" "LoadCredential=alpaca-live-account:/run/keys/alpaca-live-account"
    ++ lib.optional (!(eval { }).config.users.users.avwap.isSystemUser) "default: no avwap system user";
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
