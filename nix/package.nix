# The avwap crate built with crane: dependencies once (buildDepsOnly), then the four binaries,
# plus clippy, fmt, doc and test checks that reuse the same dependency artifacts (the model is
# crane's examples/quick-start).
#   pkgs     : a nixpkgs package set (>= 26.05, crane's minimum)
#   craneLib : crane.mkLib pkgs
{ pkgs, craneLib }:
let
  inherit (pkgs) lib;
  root = ../.;
  inherit (lib) fileset;

  # Rust and Cargo files (Cargo.toml/lock, every .rs, every .toml: examples/avwap.toml too),
  # never the local target/.
  cargoSources = fileset.difference (craneLib.fileset.commonCargoSources root) (
    fileset.maybeMissing ../target
  );

  # The package: what the four binaries are built from. The library embeds the demo data
  # (include_bytes! in src/scan/demo.rs); tests/ is left out, so a change to a test or a test
  # fixture does not rebuild the package (benches/ stays: Cargo.toml declares the benches).
  packageSrc = fileset.toSource {
    inherit root;
    fileset = fileset.unions [
      (fileset.difference cargoSources ../tests)
      ../data/demo/bars.csv.gz
      ../data/demo/sectors.csv
    ];
  };

  # The checks: also everything the tests read (all of tests/: golden data, recorded systemd
  # fixtures; ARCHITECTURE.md, whose layer table a unit test compares with the code) and the
  # proptest regression seeds they replay.
  src = fileset.toSource {
    inherit root;
    fileset = fileset.unions [
      cargoSources
      ../data
      ../tests
      ../ARCHITECTURE.md
      ../proptest-regressions
    ];
  };

  commonArgs = {
    inherit src;
    strictDeps = true;
    # rusqlite's `bundled` feature compiles SQLite from C with stdenv's compiler: no extra inputs.
  };

  cargoArtifacts = craneLib.buildDepsOnly commonArgs;

  # Built from the narrower source with the checks' dependency artifacts (buildDepsOnly sees
  # only the Cargo manifests and lock, which both sources share).
  package = craneLib.buildPackage (
    commonArgs
    // {
      inherit cargoArtifacts;
      src = packageSrc;
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
  inherit
    craneLib
    package
    cargoArtifacts
    packageSrc
    src
    ;

  checks = {
    avwap = package;

    # The checks' outputs are only their success: no copy of target/ in the store
    # (doInstallCargoArtifacts = false; cargoDoc has that default already).
    avwap-clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        doInstallCargoArtifacts = false;
        cargoClippyExtraArgs = "--all-targets -- --deny warnings";
      }
    );

    # `cargo doc --no-deps --lib`: a broken intra-doc link or any other rustdoc warning fails
    # it. The library only: the binaries' doc comments are their clap `--help` text, written
    # for a terminal (`<state-dir>` is a placeholder there, not an HTML tag).
    avwap-doc = craneLib.cargoDoc (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoDocExtraArgs = "--no-deps --lib";
        env.RUSTDOCFLAGS = "--deny warnings";
      }
    );

    avwap-fmt = craneLib.cargoFmt { inherit src; };

    # `cargo test --locked` (release profile, sharing cargoArtifacts): unit, integration and doc
    # tests, offline. setpriv is only used by a gate test when the builder runs as root.
    avwap-tests = craneLib.cargoTest (
      commonArgs
      // {
        inherit cargoArtifacts;
        doInstallCargoArtifacts = false;
        nativeBuildInputs = [ pkgs.util-linux ];
      }
    );
  };
}
