"""Shared fixtures and helpers: the sample tree, the synthetic scratch tree, a logging systemctl
stand-in, the CLI run in process (``render``) and in a fresh process (``render_process``), and the
directories that keep a real Puppet inside a test's temp dir.

Every path root (machines folder, host root, state dir) points into pytest's tmp_path: tests never
touch the machine's /var/lib/machines, /etc or services. render reads ``RENDER_*`` defaults from
the environment when it builds its parser, so those variables are dropped here, once, before any
test module copies ``os.environ``: a developer's shell cannot point a test at the real machine. A
test that wants one sets it with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "contrib"))

from demo_machines import provision  # noqa: E402
from synth import Layout, Synth, build  # noqa: E402

from renderer.cli import main  # noqa: E402

RENDER_ENVIRONMENT = ("RENDER_HIERADATA", "RENDER_TEMPLATES", "RENDER_MACHINES_DIR",
                      "RENDER_HOST_ROOT", "RENDER_STATE_DIR", "RENDER_SYSTEMCTL",
                      "RENDER_KEY_SOURCE", "RENDER_FACT_FILE", "RENDER_METRICS_FILE",
                      "RENDER_JOURNAL", "JOURNAL_STREAM")
for _name in [*RENDER_ENVIRONMENT, *(n for n in os.environ if n.startswith("RENDER_")
                                      and not n.startswith("RENDER_OSLO_")
                                      and n != "RENDER_UPDATE_GOLDEN")]:
    os.environ.pop(_name, None)  # every option reads RENDER_<OPTION> (renderer.config); the
    # RENDER_OSLO_* knobs of tests/test_oslo.py (make oslo-data) and RENDER_UPDATE_GOLDEN
    # (make golden-update) are no option of render's
# --journal always in a test reaches a journald the test started, never the machine's own
os.environ["RENDER_JOURNAL_SOCKET"] = "/nonexistent/render-test/journal-socket"
# ... and no test reads the machine's /etc/render/render.conf (an installed package's)
os.environ["RENDER_CONFIG"] = str(Path(__file__).parent / "data" / "empty-render.conf")
# ... nor the machine's Puppet layers (/etc/puppet/hiera.yaml, environments, modules)
os.environ["RENDER_HIERA_CONFIG"] = "/nonexistent/render-test/hiera.yaml"
os.environ["RENDER_ENVIRONMENTPATH"] = "/nonexistent/render-test/environments"
os.environ["RENDER_BASEMODULEPATH"] = "/nonexistent/render-test/modules"

from renderer.services import Service, bind, load_service, resolve_machine  # noqa: E402


def load_bound(templates: Path, name: str) -> Service:
    """A definition that needs no data, bound as render binds it: without a lookup."""
    definition = load_service(templates, name)
    return bind(definition, resolve_machine(definition, None), None)


class Tree(Layout):
    """A sample deployment under tmp_path, and the options that point render at it."""

    TEMPLATES = "service_templates"

    def options(self) -> list[str]:
        return self.roots("controller1.example.com")

    def snapshot(self, state: bool = False) -> dict[str, tuple[str, int, int, int]]:
        """Every entry under machines/ and host/ (and the state dir with ``state``): content
        hash, mode, uid, gid; a symlink by its target."""
        result = {}
        for top in (self.machines, self.host, *([self.state] if state else [])):
            for path in sorted(top.rglob("*")):
                st = path.lstat()
                if path.is_symlink():
                    digest = "-> " + os.readlink(path)
                elif path.is_file():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                else:
                    digest = ""
                result[str(path)] = (digest, st.st_mode, st.st_uid, st.st_gid)
        return result


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    tree = Tree(tmp_path)
    shutil.copytree(REPO / "hieradata", tree.hieradata)
    shutil.copytree(REPO / "service_templates", tree.templates)
    provision(tree.templates, tree.machines, tree.hieradata)
    stand_in_probes(tree.hieradata)
    tree.host.mkdir()
    return tree


def stand_in_probes(hieradata: Path) -> None:
    """The sample's galera and RabbitMQ policies as they are, with a probe that passes: their
    containers' restarts roll (renderer.rolling), and no container runs here to probe."""
    for service in ("mariadb", "rabbitmq"):
        with (hieradata / "data" / "services" / f"{service}.yaml").open("a") as data:
            data.write(f"{service}::restart_policy:\n  policy: rolling\n"
                       f"  group: {{lookup: {service}::cluster::name}}\n"
                       "  probe: {command: [/bin/true]}\n")


@pytest.fixture
def scratch(tmp_path: Path) -> Callable[..., Synth]:
    """Builds the synthetic scratch tree (tests/synth.py) right in tmp_path, once per test:
    ``scratch({service: [file entries]}, data={...}, provision=True)``."""
    def make(services: dict[str, list[dict[str, Any]]], data: dict[str, Any] | None = None,
             provision: bool = True) -> Synth:
        return build(tmp_path, services, data=data, provision=provision)
    return make


# --- systemctl ------------------------------------------------------------------------------------

class Systemctl:
    """A real executable standing in for systemctl (no container runs here). ``show`` says every
    unit is ``state``; every other call is logged; a call naming ``fail`` exits 1, and that unit
    shows ``failed`` from then on."""

    def __init__(self, directory: Path, fail: str = "", state: str = "active") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.script = directory / "systemctl"
        self.log = directory / "calls"
        failed = str(directory / "failed")
        self.script.write_text(f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
if "show" in args:
    print("failed" if args[-1] == {fail!r} and os.path.exists({failed!r}) else {state!r})
    sys.exit(0)
open({str(self.log)!r}, "a").write(" ".join(args) + "\\n")
if {fail!r} and {fail!r} in args:
    open({failed!r}, "w").close()
    sys.exit(1)
""")
        self.script.chmod(0o755)

    @property
    def command(self) -> list[str]:
        """The command for ``RealSystem``."""
        return [str(self.script)]

    @property
    def options(self) -> list[str]:
        """The CLI options; ``--health-timeout 0``: no settling wait."""
        return ["--systemctl", str(self.script), "--health-timeout", "0"]

    def calls(self) -> list[str]:
        """Every logged call (its arguments), in order."""
        return self.log.read_text().splitlines() if self.log.exists() else []

    def forget(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def systemctl(tmp_path: Path) -> Callable[..., Systemctl]:
    """Makes logging systemctl stand-ins, each in its own directory under tmp_path:
    ``systemctl(fail="x.service", state="active")``."""
    made: list[Systemctl] = []

    def make(fail: str = "", state: str = "active") -> Systemctl:
        name = "systemctl" if not made else f"systemctl-{len(made) + 1}"
        made.append(Systemctl(tmp_path / name, fail, state))
        return made[-1]
    return make


# --- running render -------------------------------------------------------------------------------

@dataclass
class Result:
    code: int
    out: str
    err: str


class RenderTimeout(BaseException):
    """Raised in a run that outlives its timeout (BaseException: render catches no such thing)."""


def _timed_out(signum: int, frame: object) -> None:
    raise RenderTimeout("render did not finish in time")


def render(*args: str, timeout: float = 60, cwd: Path | None = None) -> Result:
    """Run render in this process: ``renderer.cli.main(args)`` with stdout and stderr captured,
    warnings on stderr as a real process prints them, SystemExit (``--help``, usage errors) as
    its exit code. The environment is this process's: set ``RENDER_*`` with monkeypatch.setenv.
    A run that takes longer than ``timeout`` seconds fails the test; ``cwd``: run from there
    (for relative root options)."""
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("render: warning: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    alarm = threading.current_thread() is threading.main_thread()
    if alarm:
        previous = signal.signal(signal.SIGALRM, _timed_out)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.chdir(here)
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        root.removeHandler(handler)
    return Result(code, out.getvalue(), err.getvalue())


def render_process(*args: str, env: dict[str, str] | None = None,
                   timeout: float = 60) -> Result:
    """Run ``python -m renderer`` in a fresh process, as Puppet and cron do."""
    done = subprocess.run([sys.executable, "-m", "renderer", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def run():
    return render


# --- Puppet ---------------------------------------------------------------------------------------

PUPPET_DIRS = ("confdir", "vardir", "codedir", "rundir", "logdir", "ssldir", "publicdir",
               "cadir", "vendormoduledir")


def puppet_dirs(root: Path) -> list[str]:
    """Options that put every directory a real Puppet reads or writes inside ``root`` (created
    here): Debian's defaults are absolute (/etc/puppet, /var/cache/puppet, /run/puppet,
    /var/log/puppet, /var/lib/puppet/ssl, /var/cache/puppet/public), not under --vardir, and
    parallel Puppet processes race to create them. The caller adds ``--hiera_config``."""
    options = []
    for name in PUPPET_DIRS:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        options.append(f"--{name}={path}")
    return options
