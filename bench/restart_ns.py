"""The restart figure: one data change that restarts N independent containers, against the real
systemd booted in a private namespace (tests/systemd_ns.py, as the restart tests boot it).

Each container is a stand-in ``systemd-nspawn@svcNNNN.service`` (a long sleep) that is running,
so render's ``try-restart`` restarts it and waits for its health as it would on a host.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import synth_host

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import systemd_ns  # noqa: E402


class RestartBench:
    """A booted namespace and an N-service synthetic host whose containers all run."""

    def __init__(self, base: Path, units: int, render: str):
        self.base, self.units, self.render = base, units, render
        self.ns: systemd_ns.NamespacedSystemd | None = None
        self.argv: list[str] = []

    def start(self) -> None:
        """Boot, start every container, make the first (creating) run; raise on any failure."""
        systemd_ns.check_prerequisites()
        self.ns = systemd_ns.boot(self.base / "systemd",
                                  {"systemd-nspawn@.service": systemd_ns.standin_nspawn_unit()})
        options = synth_host.build(self.base / "host", self.units, restart="container")
        names = [f"systemd-nspawn@{name}.service"
                 for name in synth_host.service_names(self.units)]
        self.ns.systemctl("start", *names)
        self.argv = [self.render, "--systemctl", self.ns.systemctl_prefix, "--all", "--quiet",
                     *options]
        self.run_once()  # creates every file: restarts every container once
        synth_host.change_common(self.base / "host")
        out = self.run_once()
        restarted = out.count("restart systemd-nspawn@")
        if restarted != self.units:
            raise RuntimeError(f"a common data change restarted {restarted} of {self.units} "
                               f"containers, not all: {out[-300:]!r}")

    def run_once(self) -> str:
        done = subprocess.run([a for a in self.argv if a != "--quiet"], capture_output=True,
                              text=True, check=False)
        if done.returncode != 2:
            raise RuntimeError(f"render exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return done.stdout

    def prepare(self) -> None:
        """Before each timed run: a common data change, so every container restarts."""
        synth_host.change_common(self.base / "host")

    def stop(self) -> None:
        if self.ns is not None:
            self.ns.stop()
            self.ns = None
