# Parameters of nix/units.nix for the plain unit files in dist/systemd/ (non-NixOS hosts).
# tools/render-units evaluates `import ./units.nix (import ./dist.nix // overrides)`.
# Binaries installed with `cargo install --path . --root /usr/local`; configuration in
# /etc/avwap/avwap.toml (start from examples/avwap.toml). Credentials are added per host by
# rendering with --credential (see dist/systemd/INSTALL.md).
{
  binDir = "/usr/local/bin";
  systemctl = "/bin/systemctl";
  user = "avwap";
  group = "avwap";
  stateDir = "/var/lib/avwap";
  configFile = "/etc/avwap/avwap.toml";
  mode = "sim";
  # scanProvider is not set: it follows mode (nix/scan-provider.nix), so the shipped sim units
  # scan the local bar store and `--set mode=alpaca-paper` alone gives the Alpaca provider.
  scanSchedule = "Mon..Fri 08:30 America/New_York";
  restartSchedule = "Mon..Fri 08:40 America/New_York";
}
