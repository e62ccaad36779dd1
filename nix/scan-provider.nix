# Which bars the scan reads for a given execution mode: the ONE rule, shared by nix/units.nix
# (and so tools/render-units and dist/systemd/) and nix/module.nix (services.avwap).
# Plain Nix, no nixpkgs: .ci/deploy-checks evaluates it through nix/units.nix.
#
#   sim                                 -> "store": the local bar store (filled with
#                                          `avwap-scan import`); no network, no keys.
#   dry-run, alpaca-paper, alpaca-live  -> "alpaca": the universe from iShares (cached in the
#                                          state directory), daily bars topped up from Alpaca.
#
# A broker mode trades (or, dry-run, records) orders from the watchlist the scan writes, so its
# scan needs a real, current data source. "store" in a broker mode reads a bar store that
# nothing fills: every morning's scan finds no current bars and fails (exit 13), the gate keeps
# execution down and nothing trades. It is refused unless the operator states that something
# else fills the store (scanStoreFilledExternally). "synthetic" invents bars (offline tests) and
# is refused in a broker mode without exception: its candidates are not real.
rec {
  brokerModes = [
    "dry-run"
    "alpaca-paper"
    "alpaca-live"
  ];

  # The provider a mode gets when none is given.
  defaultFor = mode: if mode == "sim" then "store" else "alpaca";

  # null when the pair is a usable configuration, else the reason it is not. `names` spells
  # the settings the way the caller's user writes them (module options or render-units
  # parameters).
  problem =
    {
      mode,
      scanProvider,
      scanStoreFilledExternally,
      names,
    }:
    if !(builtins.elem mode brokerModes) then
      null
    else if scanProvider == "synthetic" then
      "${names.mode} = \"${mode}\" acts on the scan's watchlist, but ${names.scanProvider} = \"synthetic\" invents its bars (offline tests only). Use ${names.scanProvider} = \"alpaca\" (the default for every mode but sim)."
    else if scanProvider == "store" && !scanStoreFilledExternally then
      "${names.mode} = \"${mode}\" acts on the scan's watchlist, but ${names.scanProvider} = \"store\" only reads the local bar store, which nothing fills: every morning's scan would find no current bars and fail (exit 13), so execution never passes the gate. Use ${names.scanProvider} = \"alpaca\" (the default for every mode but sim: Alpaca bars and the iShares universe), or, if your own job fills the bar store (avwap-scan import), say so with ${names.scanStoreFilledExternally} = true."
    else
      null;
}
