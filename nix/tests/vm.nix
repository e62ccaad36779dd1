# NixOS VM test: the shared deployment scenario (nix/tests/scenario.sh) against the real module.
# The flake exposes the run as legacyPackages.<system>.nixosTests.vm-scenario (needs KVM, as
# every NixOS VM test: `nix build .#nixosTests.vm-scenario -L`) and its driver (the guest system
# and the type-checked test script, no KVM needed) as the check `vm-scenario-driver`; see the
# comment on `checks` in flake.nix. Needs nixpkgs, so not on the project's offline machines.
{ pkgs, self }:
pkgs.testers.runNixOSTest {
  name = "avwap-scenario";

  nodes.machine =
    { ... }:
    {
      imports = [ self.nixosModules.default ];
      services.avwap = {
        enable = true;
        mode = "sim";
        # Offline: a seeded synthetic market ending at the previous NYSE session.
        scanProvider = "synthetic";
      };
      # The scenario sets the guest clock to a fixed weekday session; nothing may move it back.
      services.timesyncd.enable = false;
      virtualisation.memorySize = 1024;
    };

  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.wait_for_unit("timers.target")
    # The unit text the module produced, for the log.
    print(machine.succeed("systemctl cat execution.service scan.service scan.timer execution-restart.service execution-restart.timer"))
    # About 11 minutes under TCG on 2 cores (tests/vm/README.md); most of it is real waiting
    # (gate retries, restart delays, the watchdog, timers firing), so KVM saves little.
    rc, out = machine.execute("${pkgs.bash}/bin/bash ${./scenario.sh} 2>&1", timeout=2700)
    print(out)
    failed = [line for line in out.splitlines() if line.startswith("RESULT ") and "status=fail" in line]
    assert rc == 0 and not failed, f"scenario failed (rc={rc}):\n" + "\n".join(failed)
  '';
}
