"""The in-sync fast path (renderer.fastpath) against the full path, its reference.

From an in-sync sample (a real run with ``--systemctl true``), each kind of input is mutated in
turn behind render's back; the fast path and ``--no-fast-path`` then run on the same tree, and
their output and exit code must be the same byte for byte: the fast path never says "in sync"
where the full run sees a change. ``RENDER_DEBUG_FASTPATH`` (kept out of the manifest's key)
names a file that gets ``hit`` or why not, so each test knows which path answered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import stand_in_probes

from renderer import fastpath

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "contrib"))
from demo_machines import provision  # noqa: E402

NODE = "controller1.example.com"
GLOB_LEVEL = '''  - name: "Extra"
    glob: "extra/*.yaml"
  - name: "Common data"
'''


class Sample:
    """The sample tree in ``base``, with a glob level and a configuration file."""

    def __init__(self, base: Path) -> None:
        import shutil

        self.base = base
        shutil.copytree(REPO / "hieradata", base / "hieradata")
        shutil.copytree(REPO / "service_templates", base / "templates")
        hiera = base / "hieradata" / "hiera.yaml"
        hiera.write_text(hiera.read_text().replace('  - name: "Common data"\n', GLOB_LEVEL))
        (base / "hieradata" / "data" / "extra").mkdir()
        provision(base / "templates", base / "machines", base / "hieradata")
        stand_in_probes(base / "hieradata")
        (base / "host").mkdir()
        self.config = base / "render.conf"
        self.config.write_text("[render]\ndiff-context = 3\n")
        self.marker = base / "marker"
        self.options = ["--hieradata", str(base / "hieradata"), "--templates",
                        str(base / "templates"), "--machines-dir", str(base / "machines"),
                        "--host-root", str(base / "host"), "--state-dir", str(base / "state"),
                        "--node", NODE]

    def render(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "RENDER_CONFIG": str(self.config),
               "RENDER_DEBUG_FASTPATH": str(self.marker)}
        return subprocess.run([sys.executable, "-m", "renderer", *args, *self.options],
                              capture_output=True, text=True, timeout=120, cwd=self.base,
                              env=env, check=False)

    def last(self) -> str:
        lines = self.marker.read_text().splitlines() if self.marker.exists() else []
        return lines[-1] if lines else ""

    def settle(self, *args: str) -> None:
        """In sync, recorded, and answered by the fast path."""
        self.render("--systemctl", "true", *args)
        time.sleep(fastpath.GRANULARITY_NS / 1e9 + 0.1)  # out of the racy window
        done = self.render("--systemctl", "true", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        done = self.render("--noop", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert self.last() == "hit", self.last()


@pytest.fixture
def sample(tmp_path: Path) -> Sample:
    return Sample(tmp_path)


def keystone_conf(s: Sample) -> Path:
    return s.base / "machines" / "keystone" / "etc" / "keystone" / "keystone.conf"


def edit_same_size_and_mtime(path: Path) -> None:
    before = path.stat()
    data = bytearray(path.read_bytes())
    index = data.index(b"=") + 2
    data[index] = ord("X") if data[index] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


WANTS = "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"


def relink(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def os_family() -> str:
    from renderer.scope import native_facts

    return str(native_facts()["os"]["family"])


MUTATIONS: dict[str, Callable[[Sample], None]] = {
    "hieradata content": lambda s: replace_in(
        s.base / "hieradata/data/services/keystone.yaml", "expiration: 3600", "expiration: 7200"),
    "hieradata mode": lambda s: (s.base / "hieradata/data/common.yaml").chmod(0o600),
    "hieradata owner": lambda s: os.chown(s.base / "hieradata/data/common.yaml", 4242, 4242),
    "new file matched by a glob": lambda s: (s.base / "hieradata/data/extra/site.yaml")
    .write_text("keystone::token::expiration: 1800\n"),
    "path level file appears": lambda s: (s.base / "hieradata/data/os").mkdir() or (
        s.base / f"hieradata/data/os/{os_family()}.yaml").write_text(
        "keystone::debug: true\n"),
    "hieradata file removed": lambda s: (s.base / "hieradata/data/services/keystone.yaml")
    .unlink(),
    "hiera.yaml edited": lambda s: replace_in(s.base / "hieradata/hiera.yaml",
                                             '    glob: "extra/*.yaml"\n',
                                             '    glob: "extra/*.yml"\n'),
    "template edited": lambda s: (s.base / "templates/keystone/keystone.conf.j2").open("a")
    .write("# edited\n"),
    "_lib template edited": lambda s: (s.base / "templates/_lib/container.nspawn.j2").open("a")
    .write("# edited\n"),
    "service.yaml edited": lambda s: (s.base / "templates/keystone/service.yaml").open("a")
    .write("# a comment changes no meaning, only the file\n"),
    "container passwd edited": lambda s: replace_in(
        s.base / "machines/keystone/etc/passwd", "keystone:x:", "keystone:x:1"),
    "destination edited inside the container": lambda s: keystone_conf(s).open("a")
    .write("# local edit\n"),
    "destination mode": lambda s: keystone_conf(s).chmod(0o666),
    "destination owner": lambda s: os.chown(keystone_conf(s), 4242, 4242),
    "edit keeping size and mtime": lambda s: edit_same_size_and_mtime(keystone_conf(s)),
    "stale temp file": lambda s: (keystone_conf(s).parent / ".render-tmp.keystone.conf.dead")
    .write_text("left by a killed run\n"),
    "destination removed": lambda s: keystone_conf(s).unlink(),
    "state removed": lambda s: __import__("shutil").rmtree(s.base / "state/services"),
    "securetty edited inside the container": lambda s: replace_in(
        s.base / "machines/keystone/etc/securetty", "pts/0\n", ""),
    "securetty edit keeping its line": lambda s: (s.base / "machines/keystone/etc/securetty")
    .open("a").write("tty2\n"),
    "shadow edited inside the container": lambda s: replace_in(
        s.base / "machines/keystone/etc/shadow", "root:$6$", "root:$5$"),
    "enabled link changed": lambda s: relink(s.base / "machines/keystone" / WANTS, "/dev/null"),
    "enabled link removed": lambda s: (s.base / "machines/keystone" / WANTS).unlink(),
    "configuration file edited": lambda s: s.config.write_text(
        "[render]\ndiff-context = 3\nformat = json\n"),
}


@pytest.mark.slow
def test_fast_path_agrees_with_the_full_path_after_every_mutation(sample: Sample) -> None:
    sample.settle("--all")
    seen_change = 0
    for name, mutate in MUTATIONS.items():
        kept = {path: path.read_bytes() for path in (
            sample.base / "hieradata/data/services/keystone.yaml",
            sample.base / "machines/keystone/etc/passwd")}
        mutate(sample)
        full = sample.render("--noop", "--all", "--no-fast-path")
        fast = sample.render("--noop", "--all")
        assert (fast.returncode, fast.stdout, fast.stderr) == \
            (full.returncode, full.stdout, full.stderr), name
        if full.returncode != 0 or full.stdout or "in sync" not in full.stderr:
            seen_change += 1
            assert sample.last() != "hit", name
        for path, data in kept.items():  # what would fail the next runs goes back
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
        sample.settle("--all")
    # the mode/owner/comment mutations change nothing, nor a securetty edit that keeps pts/0
    assert seen_change >= len(MUTATIONS) - 5


@pytest.mark.slow
def test_real_run_and_json_answered_alike(sample: Sample) -> None:
    sample.settle("keystone")
    for args in (("keystone",), ("--noop", "keystone"), ("--format", "json", "keystone")):
        sample.settle(*[a for a in args if a != "--noop"])  # a --no-fast-path run records none
        fast = sample.render(*args)
        assert sample.last() == "hit", args
        full = sample.render(*args, "--no-fast-path")
        assert (fast.returncode, fast.stdout, fast.stderr) == \
            (full.returncode, full.stdout, full.stderr), args


@pytest.mark.slow
def test_racy_entry_is_treated_as_changed(sample: Sample) -> None:
    sample.settle("keystone")
    ahead = time.time_ns() + 60 * 10**9  # as if written after the recording run started
    os.utime(keystone_conf(sample), ns=(ahead, ahead))
    assert sample.render("--systemctl", "true", "keystone").returncode == 0  # records, racy
    sample.render("--noop", "keystone")
    assert sample.last().startswith("racy "), sample.last()


@pytest.mark.slow
def test_planted_or_tampered_manifest_is_ignored(sample: Sample) -> None:
    sample.settle("keystone")
    manifest = sample.base / "state" / fastpath.MANIFEST
    raw = bytearray(manifest.read_bytes())
    raw[-5] ^= 0xFF  # the body no longer matches its MAC
    manifest.write_bytes(bytes(raw))
    keystone_conf(sample).open("a").write("# drift\n")
    done = sample.render("--noop", "keystone")
    assert sample.last() == "no record"
    assert done.returncode == 2


@pytest.mark.slow
def test_fast_path_imports_no_pipeline(sample: Sample) -> None:
    sample.settle("--all")
    probe = ("import sys\n"
             "from renderer.fastpath import main\n"
             "code = main(sys.argv[1:])\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('jinja2', 'yaml', 'oslo_config', 'argparse') or m in "
             "('renderer.runner', 'renderer.cli', 'renderer.hiera', 'renderer.templates'))\n"
             "print('HEAVY', heavy, file=sys.stderr)\n"
             "sys.exit(code)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RENDER_CONFIG": str(sample.config),
           "RENDER_DEBUG_FASTPATH": str(sample.marker)}
    done = subprocess.run([sys.executable, "-c", probe, "--noop", "--all", *sample.options],
                          capture_output=True, text=True, env=env, cwd=sample.base, check=False)
    assert done.returncode == 0, done.stderr
    assert sample.last() == "hit"
    assert "HEAVY []" in done.stderr


def test_version_imports_no_pipeline() -> None:
    probe = ("import sys\n"
             "from renderer.fastpath import main\n"
             "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('jinja2', 'yaml', 'oslo_config')))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.stdout.splitlines() == ["render 0.1.0", "[]"], done.stdout + done.stderr


@pytest.mark.slow
def test_every_file_the_run_opens_is_in_the_manifest(sample: Sample) -> None:
    """Completeness: an audit hook sees every path the full run opens or lists by name; each
    one under the sample must be an entry (the System's fd-relative reads are noted as
    chains by RealSystem, and checked by the differential test)."""
    sample.settle("--all")
    (sample.base / "state" / fastpath.MANIFEST).unlink()
    probe = ("import sys, os\n"
             "seen = set()\n"
             "def hook(event, args):\n"
             "    if event in ('open', 'os.listdir', 'os.scandir', 'glob.glob') and args \\\n"
             "            and isinstance(args[0], str) and args[0].startswith('/'):\n"
             "        seen.add(os.path.abspath(args[0]))\n"
             "sys.addaudithook(hook)\n"
             "from renderer.fastpath import main\n"
             "code = main(sys.argv[1:])\n"
             "print('\\n'.join(sorted(seen)), file=open(os.environ['SEEN'], 'w'))\n"
             "sys.exit(code)\n")
    seen_file = sample.base / "seen"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RENDER_CONFIG": str(sample.config),
           "SEEN": str(seen_file)}
    done = subprocess.run([sys.executable, "-c", probe, "--systemctl", "true", "--all",
                           *sample.options], capture_output=True, text=True, env=env,
                          cwd=sample.base, check=False)
    assert done.returncode == 0, done.stderr
    state = sample.base / "state"
    fd = fastpath.open_state(str(state))
    assert fd is not None
    try:
        key = fastpath.read_state(fd, "hmac.key")
        records = fastpath.decode(fastpath.read_state(fd, fastpath.MANIFEST), key or b"")
    finally:
        os.close(fd)
    assert len(records) == 1
    entries = {path for path, _ in next(iter(records.values()))["entries"]}  # type: ignore
    opened = [p for p in seen_file.read_text().splitlines()
              if p.startswith(str(sample.base)) and not p.startswith(str(state))
              and p not in (str(seen_file), str(sample.base))  # cwd: python -c's sys.path[0]
              and "*" not in p]  # the glob's pattern: its directories are entries
    assert opened, "the audit hook saw nothing"
    missing = [p for p in opened if p not in entries and p.rstrip("/") not in entries]
    assert not missing
    assert str(sample.config) in entries
    assert str(state / "hmac.key") in entries
    assert str(keystone_conf(sample)) in entries
    assert str(sample.base / "hieradata" / "data" / "extra") in entries


def test_invocation_refuses_what_argparse_would_expand() -> None:
    env: dict[str, str] = {}
    assert fastpath.invocation(["--noo", "keystone"], env) is None
    assert fastpath.invocation(["--no-fast-path", "keystone"], env) is None
    assert fastpath.invocation(["--", "keystone"], env) is None
    assert fastpath.invocation(["-qh", "keystone"], env) is None
    assert fastpath.invocation(["lookup", "keystone::debug"], env) is None  # subcommands
    real = fastpath.invocation(["keystone"], env)
    noop = fastpath.invocation(["--noop", "keystone", "--systemctl", "true"], env)
    assert real is not None and noop is not None
    assert real[0] == noop[0] and noop[1] and not real[1]
    other = fastpath.invocation(["keystone"], {"RENDER_NODE": "x"})
    assert other is not None and other[0] != real[0]


def test_state_dir_is_found_as_the_full_run_finds_it(tmp_path: Path) -> None:
    config = tmp_path / "render.conf"
    config.write_text("[render]\nstate-dir = /srv/state\n")
    env = {"RENDER_CONFIG": str(config)}
    assert fastpath.state_dir(["keystone"], env) == "/srv/state"
    assert fastpath.state_dir(["keystone"], {**env, "RENDER_STATE_DIR": "/x"}) == "/x"
    assert fastpath.state_dir(["--state-dir", "/y", "keystone"], env) == "/y"
    assert fastpath.state_dir(["--state", "/y", "keystone"], env) is None


@pytest.mark.slow
def test_fast_path_publishes_the_fact_and_metrics_as_the_full_run(sample: Sample) -> None:
    fact, metrics = sample.base / "render.json", sample.base / "render.prom"
    sample.options += ["--fact-file", str(fact), "--metrics-file", str(metrics)]
    sample.settle("--all")

    def published(*args: str) -> list[str]:
        fact.unlink()
        metrics.unlink()
        assert sample.render("--noop", "--all", *args).returncode == 0
        lines = fact.read_text().splitlines() + metrics.read_text().splitlines()
        return [line for line in lines if "checked_at" not in line
                and not line.startswith("render_last_check_timestamp_seconds ")]

    fast = published()
    assert sample.last() == "hit"
    assert fast == published("--no-fast-path")
    assert any('"noop": true' in line for line in fast)


@pytest.mark.slow
def test_facts_file_and_native_facts_are_inputs(sample: Sample) -> None:
    import json

    from renderer.scope import native_facts

    sample.settle("keystone")  # native facts: their files and the node name are entries
    fd = fastpath.open_state(str(sample.base / "state"))
    assert fd is not None
    try:
        records = fastpath.decode(fastpath.read_state(fd, fastpath.MANIFEST),
                                  fastpath.read_state(fd, "hmac.key") or b"")
    finally:
        os.close(fd)
    (only,) = records.values()
    entries = {path for path, _ in only["entries"]}  # type: ignore[attr-defined]
    assert {"/etc/os-release", "/etc/resolv.conf"} <= entries
    assert only["values"] == {"nodename": os.uname().nodename}

    facts = sample.base / "facts.json"
    facts.write_text(json.dumps({**native_facts(), "clientcert": NODE}))
    sample.options += ["--facts", str(facts)]
    sample.settle("keystone")
    facts.write_text(json.dumps({**native_facts(), "clientcert": NODE, "extra": 1}))
    full = sample.render("--noop", "keystone", "--no-fast-path")
    fast = sample.render("--noop", "keystone")
    assert sample.last() == f"changed {facts}"
    assert (fast.returncode, fast.stdout, fast.stderr) == \
        (full.returncode, full.stdout, full.stderr)


@pytest.mark.slow
def test_a_real_run_drops_the_manifest_before_it_writes(sample: Sample) -> None:
    sample.settle("keystone")
    manifest = sample.base / "state" / fastpath.MANIFEST
    keystone_conf(sample).open("a").write("# drift\n")
    assert sample.render("--systemctl", "true", "--no-fast-path", "keystone").returncode == 2
    assert not manifest.exists()
