{
  description = "avwap: Anchored-VWAP swing-trading system (scanner, execution service, watchlist gate, health check) with its NixOS module";

  # Two inputs only. crane takes nixpkgs through mkLib (it has no inputs of its own), so there is
  # nothing to `follows`. No flake-utils: the two systems are spelled out below.
  inputs = {
    # Current stable release branch; crane requires nixpkgs >= 26.05.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      build =
        pkgs:
        import ./nix/package.nix {
          inherit pkgs;
          craneLib = crane.mkLib pkgs;
        };
      # The NixOS VM tests of one system (they need KVM to run; see `checks` below).
      vmTests = pkgs: { vm-scenario = import ./nix/tests/vm.nix { inherit pkgs self; }; };
      # f receives the system's nixpkgs and its crane build (evaluated once per system).
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          let
            pkgs = nixpkgs.legacyPackages.${system};
          in
          f pkgs (build pkgs)
        );
    in
    {
      packages = forAllSystems (
        _pkgs: built: {
          avwap = built.package;
          default = built.package;
        }
      );

      # `nix flake check` runs everything that builds on any Linux builder: the package,
      # clippy -D warnings, rustfmt, rustdoc -D warnings, cargo test, the module's evaluation
      # checks, and the NixOS VM test's driver (the guest system built with the module, the test
      # script type-checked and linted), but not the VM run itself.
      #
      # Why the run is not a check: nixpkgs gives every NixOS VM test
      # requiredSystemFeatures = [ "nixos-test" "kvm" ] (nixos/lib/testing/run.nix), and Nix
      # advertises "kvm" only where /dev/kvm is usable, so on a builder without KVM a
      # `vm-scenario` check made the whole `nix flake check` fail, for a test that is about
      # systemd rather than the build. Flake evaluation is pure and cannot see /dev/kvm, so
      # "checks only with KVM" cannot be decided in the flake. The run lives in
      # legacyPackages (like nixpkgs' own `nixosTests`, not evaluated by `nix flake check`):
      #   nix build .#nixosTests.vm-scenario -L      # on a machine with KVM
      # Without KVM the same scenario runs on real systemd in a Debian guest under TCG:
      # `bash tests/vm/run.sh` (part of .ci/run). See docs/deploy.md.
      checks = forAllSystems (
        pkgs: built:
        built.checks
        // {
          module-eval = import ./nix/tests/module-eval.nix { inherit pkgs self nixpkgs; };
          vm-scenario-driver = (vmTests pkgs).vm-scenario.driver;
        }
      );

      legacyPackages = forAllSystems (pkgs: _built: { nixosTests = vmTests pkgs; });

      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.avwap.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      # pkgs.avwap, built with the consumer's nixpkgs.
      overlays.default = final: _prev: { avwap = (build final).package; };

      devShells = forAllSystems (
        pkgs: built: {
          default = built.craneLib.devShell {
            # cargo, rustc, clippy, rustfmt and the build inputs of the cargo checks.
            inherit (built) checks;
            packages = [
              pkgs.cargo-nextest
              pkgs.jq
              pkgs.nixfmt-tree
              pkgs.python3
            ];
          };
        }
      );

      formatter = forAllSystems (pkgs: _built: pkgs.nixfmt-tree);
    };
}
