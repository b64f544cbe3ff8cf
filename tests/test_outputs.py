"""The monitoring outputs (renderer.outputs, renderer.journal): the Facter fact, the node_exporter
textfile and the journald entries, read back by the real consumers: ``facter --external-dir``,
a ``prometheus-node-exporter`` on loopback, and ``journalctl`` on the files of a
``systemd-journald`` started in a private mount namespace (never the machine's own journal)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Tree, render

from renderer import journal
from renderer.apply import ServiceResult
from renderer.errors import ValidationError
from renderer.masking import Masker
from renderer.outputs import label, metrics, write_output
from renderer.plan import failed
from renderer.status import status


def outputs(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    facts, prom = tmp_path / "facts.d", tmp_path / "textfile"
    facts.mkdir(exist_ok=True)
    prom.mkdir(exist_ok=True)
    return facts, prom, ["--fact-file", str(facts / "render.json"),
                         "--metrics-file", str(prom / "render.prom")]


def read_fact(facts: Path) -> dict:
    return json.loads((facts / "render.json").read_text())["render"]


def test_noop_writes_fact_and_metrics_and_nothing_else(tree: Tree, tmp_path: Path):
    facts, prom, options = outputs(tmp_path)
    before = tree.snapshot(state=True)
    result = render("--noop", "keystone", "memcached", *tree.options(), *options)
    assert result.code == 2, result.err
    assert tree.snapshot(state=True) == before  # managed files and state untouched
    fact = read_fact(facts)
    assert fact["noop"] is True and fact["exit_code"] == 2 and fact["in_sync"] is False
    assert abs(fact["checked_at"] - time.time()) < 60
    keystone = fact["services"]["keystone"]
    assert keystone["in_sync"] is False and keystone["files_pending"] > 0
    assert keystone["restarts_owed"] > 0 and keystone["last_error"] is None
    for path in (facts / "render.json", prom / "render.prom"):
        assert path.stat().st_mode & 0o7777 == 0o644
    assert sorted(os.listdir(facts)) == ["render.json"]  # no temp file left
    assert sorted(os.listdir(prom)) == ["render.prom"]


def test_real_run_then_noop_reports_in_sync(tree: Tree, tmp_path: Path, systemctl):
    facts, prom, options = outputs(tmp_path)
    stub = systemctl()
    assert render("keystone", *tree.options(), *stub.options, *options).code == 2
    fact = read_fact(facts)
    assert fact["noop"] is False and fact["exit_code"] == 2 and fact["in_sync"] is True
    assert fact["services"]["keystone"] == {
        "machine": "keystone", "in_sync": True, "files_pending": 0, "restarts_owed": 0,
        "errors": 0, "last_error": None}
    assert render("--noop", "keystone", *tree.options(), *stub.options, *options).code == 0
    assert read_fact(facts)["in_sync"] is True
    text = (prom / "render.prom").read_text()
    assert 'render_service_in_sync{service="keystone",machine="keystone"} 1\n' in text
    assert "render_run_exit_code 0\n" in text


def test_no_restart_leaves_restarts_owed(tree: Tree, tmp_path: Path):
    facts, _, options = outputs(tmp_path)
    assert render("--no-restart", "keystone", *tree.options(), *options).code == 2
    keystone = read_fact(facts)["services"]["keystone"]
    assert keystone["files_pending"] == 0 and keystone["restarts_owed"] > 0
    assert keystone["in_sync"] is False


def test_missing_directory_is_one_warning_and_the_exit_code_stays(tree: Tree, tmp_path: Path):
    result = render("--noop", "keystone", *tree.options(),
                    "--fact-file", str(tmp_path / "absent/render.json"))
    assert result.code == 2
    assert result.err == (f"render: warning: fact file {tmp_path}/absent/render.json: not "
                          "written: No such file or directory\n")


def test_run_failing_before_any_service_is_in_the_fact(tree: Tree, tmp_path: Path):
    facts, prom, options = outputs(tmp_path)
    result = render("--noop", "keystone", *tree.options(), "--facts",
                    str(tmp_path / "no-such-facts.yaml"), *options)
    assert result.code == 64  # the facts file is an argument
    fact = read_fact(facts)
    assert fact["exit_code"] == 64 and fact["in_sync"] is False and fact["services"] == {}
    assert fact["error"] == result.err.strip()
    assert "render_run_exit_code 64\n" in (prom / "render.prom").read_text()


def test_writer_replaces_a_planted_symlink_without_following_it(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "render.json").symlink_to(victim)
    old = os.umask(0o077)  # the mode is 0644 whatever the umask
    try:
        write_output(tmp_path / "render.json", b"{}\n")
    finally:
        os.umask(old)
    assert victim.read_text() == "keep me\n"
    assert not (tmp_path / "render.json").is_symlink()
    assert (tmp_path / "render.json").read_bytes() == b"{}\n"
    assert (tmp_path / "render.json").stat().st_mode & 0o7777 == 0o644


def test_last_error_is_masked_and_one_line():
    masker = Masker(b"k" * 32, ["s3cr3t-value"])
    error = ValidationError("bad value s3cr3t-value\nsecond line", path="/etc/x.conf", line=3)
    item = status(ServiceResult(failed("keystone", error)), False, False, masker)
    assert item.last_error is not None and "s3cr3t-value" not in item.last_error
    assert "\n" not in item.last_error and item.last_error.startswith("render: keystone: ")
    assert not item.in_sync and item.errors == 1 and item.exit_code == 4
    assert journal.priority(item) == 3


def test_metric_labels_escaped_per_exposition_format():
    assert label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    masker = Masker(b"k" * 32)
    item = status(ServiceResult(failed('we"ird', ValidationError("x"))), False, False, masker)
    text = metrics([item], 4, 1700000000).decode()
    assert 'render_service_errors{service="we\\"ird",machine=""} 1\n' in text
    assert "render_last_check_timestamp_seconds 1700000000\n" in text
    for line in text.splitlines():  # no client-side timestamp: a name, labels, one value
        assert line.startswith("# ") or re.fullmatch(r"render_\w+(\{.*\})? -?\d+", line), line


def test_journal_auto_follows_journal_stream_of_stderr(tmp_path: Path):
    st = os.fstat(2)
    assert journal.wanted("auto", {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not journal.wanted("auto", {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not journal.wanted("auto", {})
    assert journal.wanted("always", {}) and not journal.wanted("never", {
        "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})


def test_journal_encoding_of_a_multi_line_value():
    assert journal.encode({"A": "one", "B": "x\ny"}) == b"A=one\nB\n" + \
        (3).to_bytes(8, "little") + b"x\ny\n"


def test_journal_unreachable_is_one_warning(tree: Tree, tmp_path: Path):
    result = render("--noop", "--journal", "always", "keystone", *tree.options())
    assert result.code == 2
    assert result.err == ("render: warning: journal /nonexistent/render-test/journal-socket: "
                          "not sent: No such file or directory\n")


# --- the real consumers ------------------------------------------------------------------------

@pytest.mark.slow
def test_facter_reads_the_fact(tree: Tree, tmp_path: Path):
    facts, _, options = outputs(tmp_path)
    (facts / ".render.json.0badc0de.tmp").write_text("{ not json")  # a crashed writer's temp
    assert render("--noop", "keystone", *tree.options(), *options).code == 2
    done = subprocess.run(["facter", "--external-dir", str(facts), "-j", "render"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    fact = json.loads(done.stdout)["render"]
    assert fact == read_fact(facts)
    assert fact["services"]["keystone"]["files_pending"] > 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_node_exporter_serves_every_series(tree: Tree, tmp_path: Path, systemctl):
    _, prom, options = outputs(tmp_path)
    (prom / ".render.prom.0badc0de.tmp").write_text("garbage 1 2 3 x\n")  # must be ignored
    stub = systemctl()
    assert render("--no-restart", "keystone", "memcached", *tree.options(),
                  *stub.options, *options).code == 2
    port = free_port()
    exporter = subprocess.Popen(
        ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{port}",
         "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={prom}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 20)
    finally:
        exporter.kill()  # only the PID started here
        exporter.wait()
    assert "\nnode_textfile_scrape_error 0\n" in text
    for service in ("keystone", "memcached"):
        labels = f'{{machine="{service}",service="{service}"}}'  # node_exporter sorts labels
        assert f"render_service_in_sync{labels} 0\n" in text
        assert f"render_files_pending{labels} 0\n" in text
        assert f"render_service_errors{labels} 0\n" in text
        assert re.search(rf"\nrender_restarts_owed{re.escape(labels)} [1-9]\d*\n", text)
    assert "\nrender_run_exit_code 2\n" in text
    assert re.search(r"\nrender_last_check_timestamp_seconds \d\.\d+e\+09\n", text)
    assert "# TYPE render_files_pending gauge" in text


JOURNALD_CONF = """[Journal]
Storage=volatile
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
"""

# In a private mount namespace: /run/systemd, /run/log and journald.conf are this test's own
# directories and file, so the socket and the journal files are under tmp_path and the machine's
# journal is never reached. The PID is journald's (exec all the way); pdeathsig ends it with us.
JOURNALD_START = """set -eu
mount --bind "$1/run" /run/systemd
mount --bind "$1/log" /run/log
mount --bind "$1/journald.conf" /etc/systemd/journald.conf
mkdir -p /run/systemd/journal
exec env SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald
"""


@pytest.fixture
def journald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real systemd-journald of our own; yields the directory its journal files go to."""
    base = tmp_path / "journald"
    (base / "run").mkdir(parents=True)
    (base / "log").mkdir()
    (base / "journald.conf").write_text(JOURNALD_CONF)
    process = subprocess.Popen(
        ["setpriv", "--pdeathsig", "KILL", "unshare", "--mount", "--propagation", "private",
         "sh", "-c", JOURNALD_START, "sh", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sock = base / "run/journal/socket"
    deadline = time.monotonic() + 10
    while not sock.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert sock.exists(), process.stderr.read() if process.poll() is not None else "timeout"
        monkeypatch.setenv("RENDER_JOURNAL_SOCKET", str(sock))
        yield base / "log/journal"
    finally:
        process.kill()  # only the PID started here
        process.wait()


def read_journal(directory: Path, count: int, wait: float = 10) -> list[dict[str, str]]:
    """render's entries, once there are ``count`` of them or ``wait`` seconds have passed."""
    deadline = time.monotonic() + wait
    while True:
        done = subprocess.run(["journalctl", "-D", str(next(directory.iterdir())), "-o", "json",
                               "--all", "SYSLOG_IDENTIFIER=render"], capture_output=True,
                              text=True, check=False)
        entries = [json.loads(line) for line in done.stdout.splitlines()]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


@pytest.mark.slow
def test_journald_gets_one_entry_per_service(tree: Tree, tmp_path: Path, journald: Path,
                                             systemctl):
    stub = systemctl()
    assert render("keystone", *tree.options(), *stub.options, "--journal", "always").code == 2
    tree.hieradata.joinpath("data/common.yaml").write_text("{ broken")
    assert render("--noop", "keystone", "memcached", *tree.options(), *stub.options,
                  "--journal", "always").code == 4
    entries = read_journal(journald, 3)
    got = [(e["RENDER_SERVICE"], e["RENDER_EXIT"], e["PRIORITY"], e["RENDER_NOOP"])
           for e in entries]
    assert got == [("keystone", "2", "5", "0"), ("keystone", "4", "3", "1"),
                   ("memcached", "4", "3", "1")]
    assert entries[0]["MESSAGE"].startswith("render: keystone on keystone: ")
    assert entries[1]["MESSAGE"].startswith("render: keystone: ") and "common.yaml" in \
        entries[1]["MESSAGE"]
    assert all(e["_TRANSPORT"] == "journal" for e in entries)


@pytest.mark.slow
def test_journald_takes_an_entry_larger_than_a_datagram(journald: Path, capsys):
    journal.send_all([{"MESSAGE": "big", "SYSLOG_IDENTIFIER": "render",
                       "RENDER_BIG": "y" * 300_000}], sys.stderr)
    assert capsys.readouterr().err == ""
    [entry] = read_journal(journald, 1)
    assert entry["MESSAGE"] == "big" and len(entry["RENDER_BIG"]) == 300_000


@pytest.mark.slow
def test_journal_auto_sends_only_when_stderr_is_the_stream(tree: Tree, tmp_path: Path,
                                                          journald: Path):
    """A fresh process as systemd starts it: $JOURNAL_STREAM names its stderr (here a file
    standing in for the stream socket); a child whose stderr went elsewhere sends nothing."""
    stderr = tmp_path / "stderr"
    args = [sys.executable, "-m", "renderer", "--noop", "memcached", *tree.options()]
    with stderr.open("w") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        for stream in (f"{st.st_dev}:{st.st_ino + 1}", f"{st.st_dev}:{st.st_ino}"):
            done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=err, timeout=60,
                                  env={**env, "JOURNAL_STREAM": stream}, check=False)
            assert done.returncode == 2, stderr.read_text()
    assert stderr.read_text() == ""
    read_journal(journald, 1)
    entries = read_journal(journald, 2, wait=1)  # a second one (the mismatched run) would be in
    assert [(e["RENDER_SERVICE"], e["RENDER_NOOP"], e["PRIORITY"]) for e in entries] == [
        ("memcached", "1", "5")]
    assert entries[0]["MESSAGE"] == ("render: memcached on memcached: drifted: 7 file(s) to "
                                     "change, 2 restart(s) pending (noop)")
