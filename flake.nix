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

      # nix flake check: the build, clippy -D warnings, rustfmt, cargo test, the module's
      # evaluation checks and the NixOS VM scenario (nix/tests/).
      checks = forAllSystems (
        pkgs: built:
        built.checks
        // {
          module-eval = import ./nix/tests/module-eval.nix { inherit pkgs self nixpkgs; };
          vm-scenario = import ./nix/tests/vm.nix { inherit pkgs self; };
        }
      );

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
