# The avwap crate built with crane: dependencies once (buildDepsOnly), then the four binaries,
# plus clippy, fmt and test checks that reuse the same dependency artifacts.
#   pkgs     : a nixpkgs package set (>= 26.05, crane's minimum)
#   craneLib : crane.mkLib pkgs
{ pkgs, craneLib }:
let
  inherit (pkgs) lib;
  root = ../.;

  # Rust and Cargo files, plus what the crate embeds (data/, include_bytes!) and everything the
  # tests read (all of tests/: golden data, recorded systemd fixtures; examples/avwap.toml is
  # already a .toml). Never the local target/.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.difference (lib.fileset.unions [
      (craneLib.fileset.commonCargoSources root)
      ../data
      ../tests
    ]) (lib.fileset.maybeMissing ../target);
  };

  commonArgs = {
    inherit src;
    strictDeps = true;
    # rusqlite's `bundled` feature compiles SQLite from C with stdenv's compiler: no extra inputs.
  };

  cargoArtifacts = craneLib.buildDepsOnly commonArgs;

  package = craneLib.buildPackage (
    commonArgs
    // {
      inherit cargoArtifacts;
      # The tests run once, in the separate `avwap-tests` check.
      doCheck = false;
      meta = {
        description = "Anchored-VWAP swing-trading system: scanner, execution service, watchlist gate, health check";
        license = lib.licenses.mit;
        mainProgram = "avwap-check";
        platforms = lib.platforms.linux;
      };
    }
  );
in
{
  inherit craneLib package cargoArtifacts;

  checks = {
    avwap = package;

    avwap-clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--all-targets -- --deny warnings";
      }
    );

    avwap-fmt = craneLib.cargoFmt { inherit src; };

    # `cargo test --locked` (release profile, sharing cargoArtifacts): unit, integration and doc
    # tests, offline. setpriv is only used by a gate test when the builder runs as root.
    avwap-tests = craneLib.cargoTest (
      commonArgs
      // {
        inherit cargoArtifacts;
        nativeBuildInputs = [ pkgs.util-linux ];
      }
    );
  };
}
