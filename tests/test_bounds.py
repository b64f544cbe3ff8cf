"""Bounds on what containers and data control (renderer.bounds), with real parts: real sparse
files, real FIFOs, a real crafted passwd, real alias bombs and runaway templates, each run by the
CLI (in a fresh process where memory or a hang is what is measured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from synth import temp_files

from renderer import bounds
from renderer.errors import ApplyError, error_line
from renderer.names import is_name, printable

MiB = 1 << 20

# Runs the CLI in a fresh process and reports its peak RSS (kB) on the last stderr line.
RSS_RUNNER = """\
import resource, sys
from renderer.cli import main
code = main(sys.argv[1:])
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run_measured(*args: str, timeout: float = 60) -> tuple[int, str, str, int]:
    done = subprocess.run([sys.executable, "-c", RSS_RUNNER, *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    err_lines = done.stderr.splitlines()
    assert err_lines and err_lines[-1].startswith("RSS "), done.stderr
    return done.returncode, done.stdout, "\n".join(err_lines[:-1]), int(err_lines[-1].split()[1])


def disk_use(top: Path) -> int:
    """Bytes allocated on disk below ``top`` (st_blocks, so sparse files count as they are)."""
    return sum(p.lstat().st_blocks * 512 for p in top.rglob("*"))


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "internal error" not in text, text


# --- sizes ------------------------------------------------------------------------------------

def test_sparse_destination_replaced_not_kept_not_diffed(scratch):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text": "small\n"}],
                     "other": [{"dest": "/etc/other/b.conf"}]})
    code, _, err, baseline = run_measured(*synth.options(), "--all")
    assert code == 2, err
    dest = synth.rootfs("svc") / "etc/svc/a.conf"
    with open(dest, "r+b") as handle:
        handle.truncate(64 * MiB)  # 64 MiB on paper, a few KiB on the container's disk
    state_before = disk_use(synth.state)

    code, out, err, rss = run_measured(*synth.options(), "--diff", "--noop", "svc")
    assert code == 2, err
    line = f"{dest}: was 64.0 MiB (over the 4.0 MiB limit): replaced, not kept, not diffed"
    assert f"svc: note: {line}" in out.splitlines(), out
    assert "---" not in out and "+++" not in out, out  # no diff
    assert dest.stat().st_size == 64 * MiB  # --noop wrote nothing

    code, out, err, rss = run_measured(*synth.options(), "--diff", "svc")
    assert code == 2, err
    assert f"svc: note: {line}" in out.splitlines() and "+++" not in out, out
    assert dest.read_bytes() == b"small\n"
    assert rss < baseline + 24 * 1024, (rss, baseline)  # kB: the 64 MiB were never read
    assert disk_use(synth.state) - state_before < 1 * MiB  # and never kept
    assert all(p.stat().st_size < MiB for p in synth.state.rglob("*") if p.is_file())

    with open(dest, "r+b") as handle:
        handle.truncate(64 * MiB)
    code, out, err, _ = run_measured(*synth.options(), "--format", "json", "svc")
    assert code == 2, err
    (document,) = json.loads(out)["services"]
    assert document["notes"] == [line]
    assert document["files"][0]["diff"] == ""
    code, out, err, _ = run_measured(*synth.options(), "svc")
    assert (code, err) == (0, ""), out  # in sync again


def test_sparse_passwd_fails_its_service_in_one_line(scratch):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "owner": "svc"}],
                     "other": [{"dest": "/etc/other/b.conf", "owner": "svc"}]})
    code, _, err, baseline = run_measured(*synth.options(), "other")
    assert code == 2, err
    passwd = synth.rootfs("svc") / "etc/passwd"
    with open(passwd, "r+b") as handle:
        handle.truncate(96 * MiB)
    code, out, err, rss = run_measured(*synth.options(), "--all")
    assert code == 4, (out, err)
    assert err.splitlines() == [
        f"render: svc: {passwd}: is 96.0 MiB, over the 4.0 MiB limit: owners cannot be "
        "resolved in it"], err
    assert rss < baseline + 24 * 1024, (rss, baseline)
    assert not (synth.rootfs("svc") / "etc/svc/a.conf").exists()
    assert (synth.rootfs("other") / "etc/other/b.conf").exists()
    again = run_measured(*synth.options(), "--all")
    assert again[0] == 4 and again[2] == err, again


def test_read_bounded_stops_at_the_limit(tmp_path):
    path = tmp_path / "grows"
    path.write_bytes(b"x" * 100)
    with open(path, "rb") as handle:  # grew past its fstat: not kept
        assert bounds.read_bounded(handle.fileno(), 10, limit=50) is None
    assert (bounds.size_text(64 * MiB), bounds.size_text(10)) == ("64.0 MiB", "10 bytes")


# --- ids --------------------------------------------------------------------------------------

CRAFTED = ("root:x:0:0::/root:/bin/sh\n"
           "arabic:x:\u0663:\u0663::/:/bin/sh\n"        # '٣'.isdigit() is True
           "huge:x:1099511627776:0::/:/bin/sh\n"        # 2**40
           "max:x:4294967295:0::/:/bin/sh\n"            # 2**32 - 1: "no id"
           "svc:x:163:163::/:/bin/sh\n")


@pytest.mark.parametrize("owner, message", [
    ("arabic", "user 'arabic' does not exist in container bad"),
    ("huge", "user 'huge' does not exist in container bad"),
    ("max", "user 'max' does not exist in container bad"),
    (1099511627776, "service.yaml:2: owner 1099511627776 is not a valid id (0-4294967294)"),
    ("1099511627776", "service.yaml:2: owner 1099511627776 is not a valid id (0-4294967294)"),
])
def test_crafted_ids_fail_one_service_others_restart(scratch, systemctl, run, owner, message):
    synth = scratch({
        "bad": [{"dest": "/etc/bad/a.conf", "owner": owner, "restart": "container"},
                {"dest": "/etc/bad/b.conf", "owner": "svc", "restart": "container"}],
        "good": [{"dest": "/etc/good/a.conf", "owner": "svc", "restart": "container"}],
    })
    (synth.rootfs("bad") / "etc/passwd").write_text(CRAFTED)
    fake = systemctl()
    for attempt in (1, 2):
        result = run(*synth.options(restart=True), *fake.options, "--all")
        assert result.code == (6 if attempt == 1 else 4), (result.out, result.err)
        no_traceback(result.err + result.out)
        lines = result.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("render: bad: ") and message in lines[0], \
            lines
        assert temp_files(synth.machines) == []
        assert not (synth.rootfs("bad") / "etc/bad/b.conf").exists()  # all or nothing
    assert (synth.rootfs("good") / "etc/good/a.conf").stat().st_uid == 163
    assert [c for c in fake.calls() if "good" in c], fake.calls()
    assert not [c for c in fake.calls() if "bad" in c], fake.calls()


def test_an_id_the_kernel_cannot_hold_is_refused_before_fchown():
    from renderer.system.checks import shift

    with pytest.raises(ApplyError, match="uid 1099511627776 is not a valid id"):
        shift(2**40, 0, "uid", "/x")
    with pytest.raises(ApplyError, match="gid -1 is not a valid id"):
        shift(-1, 0, "gid", "/x")
    assert shift(163, 0, "uid", "/x") == 163


def test_parse_id_is_ascii_and_below_the_kernel_limit():
    assert [bounds.parse_id(s) for s in ("0", "163", "4294967294")] == [0, 163, 4294967294]
    assert [bounds.parse_id(s) for s in ("\u0663", "\u00b2", "4294967295", "1099511627776",
                                         "-1", "+1", " 1", "", "0" * 11)] == [None] * 9


# --- control characters -----------------------------------------------------------------------

def test_container_file_name_with_a_newline_forges_no_report_line(scratch, run):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf"}]})
    planted = synth.rootfs("svc") / "etc/svc" / ".render-tmp.a.conf.x\nrender: 0 file(s) changed"
    planted.write_text("junk")
    result = run(*synth.options(), "svc")
    assert result.code == 2, result.err
    assert not planted.exists()
    lines = result.out.splitlines()
    assert not any(line.startswith("render: 0 file(s)") for line in lines), lines
    assert any(line.endswith("a.conf.x\\nrender: 0 file(s) changed") for line in lines), lines
    assert lines[-1].startswith("render: 1 file(s) changed")


def test_printable_escapes_every_control_character():
    assert printable("a\nb\rc\td\x1b[31me\x7ff\x85g\u2028h\udcffi") == \
        "a\\nb\\rc\\td\\x1b[31me\\x7ff\\x85g\\u2028h\\xffi"
    assert printable("/var/lib/machines/nova/etc/nova/nova.conf") == \
        "/var/lib/machines/nova/etc/nova/nova.conf"
    error = ApplyError("cannot read", path="/m/x\nrender: forged", service="svc\n")
    assert error_line(error) == "render: svc\\n: /m/x\\nrender: forged: cannot read"


# --- names ------------------------------------------------------------------------------------

def test_names_ending_in_a_newline_are_refused(scratch, run):
    assert not is_name("nova\n") and is_name("nova")
    synth = scratch({"svc": [{"dest": "/etc/svc/{item}.conf", "each": {"lookup": "items"}}],
                     "mach": [{"dest": "/etc/a.conf"}]},
                    data={"items": ["a\n"], "where": "mach\n"})
    (synth.templates / "mach" / "service.yaml").write_text(
        "machine: {lookup: where}\nfiles:\n  - {template: f0.j2, dest: /etc/a.conf}\n")
    (synth.templates / "fixed").mkdir()
    (synth.templates / "fixed" / "f0.j2").write_text("x\n")
    (synth.templates / "fixed" / "service.yaml").write_text(
        'machine: "fixed\\n"\nfiles:\n  - {template: f0.j2, dest: /etc/a.conf}\n')
    result = run(*synth.options(), "svc", "mach", "fixed", "cli\n")
    assert result.code == 4
    no_traceback(result.err)
    lines = result.err.splitlines()
    assert len(lines) == 4 and all("\n" not in line for line in lines), lines
    assert "items' has an item that cannot be part of a file name: 'a\\n'" in lines[0]
    assert "'where' must be a machine name, not 'mach\\n'" in lines[1]
    assert lines[2].startswith("render: fixed: ") and "machine" in lines[2]
    assert lines[3].startswith("render: cli\\n: invalid service name 'cli\\n'")


def test_override_option_and_section_names_end_at_the_end():
    from renderer.overrides import _OPTION, _SECTION

    assert _OPTION.match("debug") and not _OPTION.match("debug\n")
    assert _SECTION.match("DEFAULT") and not _SECTION.match("DEFAULT\n")


# --- non-regular files ------------------------------------------------------------------------

def test_fifo_matched_by_a_hieradata_glob_is_refused_without_hanging(scratch):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text": "{{ lookup('k') }}\n"}]},
                    data={"k": "v"})
    (synth.hieradata / "hiera.yaml").write_text(
        "version: 5\ndefaults: {datadir: data, data_hash: yaml_data}\nhierarchy:\n"
        "  - {name: drop-ins, glob: 'conf.d/*.yaml'}\n  - {name: common, path: common.yaml}\n")
    (synth.hieradata / "data" / "conf.d").mkdir()
    fifo = synth.hieradata / "data" / "conf.d" / "planted.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    code, out, err, _ = run_measured(*synth.options(), "svc", timeout=30)
    assert time.monotonic() - start < 20
    assert code == 4, (out, err)
    assert err.splitlines() == [f"render: svc: {fifo}: not a regular file (a FIFO, device or "
                                "directory); refusing to read it"], err


@pytest.mark.parametrize("which", ["hiera.yaml", "service.yaml", "template", "facts"])
def test_other_source_fifos_are_refused(scratch, which):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text": "{{ lookup('k') }}\n"}]},
                    data={"k": "v"})
    path = {"hiera.yaml": synth.hieradata / "hiera.yaml",
            "service.yaml": synth.templates / "svc" / "service.yaml",
            "template": synth.templates / "svc" / "f0.j2",
            "facts": synth.base / "facts.yaml"}[which]
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    extra = ["--facts", str(path)] if which == "facts" else []
    code, out, err, _ = run_measured(*synth.options(), *extra, "svc", timeout=30)
    assert code in (4, 64), (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "not a regular file" in lines[0], lines


# --- YAML aliases -----------------------------------------------------------------------------

def bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["hieradata", "service.yaml"])
def test_alias_bomb_fails_fast_naming_the_file(scratch, where):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text": "{{ lookup('l8') | length }}\n"}],
                     "other": [{"dest": "/etc/other/a.conf"}]})
    if where == "hieradata":
        path = synth.hieradata / "data" / "services" / "svc.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(bomb())
    else:
        path = synth.templates / "svc" / "service.yaml"
        path.write_text(bomb() + "files:\n  - {template: f0.j2, dest: /etc/svc/a.conf}\n")
    start = time.monotonic()
    code, out, err, _ = run_measured(*synth.options(), "svc", "other", timeout=30)
    assert time.monotonic() - start < 10
    lines = err.splitlines()
    assert code == 6, (out, err)
    assert len(lines) == 1 and lines[0].startswith(f"render: svc: {path}:1:1: "), lines
    assert "aliases expand the document by more than 100000 nodes" in lines[0]
    assert (synth.rootfs("other") / "etc/other/a.conf").exists()


def test_recursive_alias_and_deep_nesting_are_refused(tmp_path):
    from renderer.errors import HieraDataError
    from renderer.yamlload import parse_yaml

    with pytest.raises(HieraDataError, match="refers to a node that contains it"):
        parse_yaml("a: &a [*a]\n", tmp_path / "x.yaml")
    deep = "b: &x 1\nc: *x\na:\n" + "".join(f"{'  ' * n}- \n" for n in range(1, 300))
    with pytest.raises(HieraDataError, match="nested more than 200 deep"):
        parse_yaml(deep, tmp_path / "x.yaml")
    assert parse_yaml("a: &x {b: 1}\nc: *x\n", tmp_path / "x.yaml") == \
        {"a": {"b": 1}, "c": {"b": 1}}


@pytest.mark.parametrize("text", [
    "a: .*x\nb: '^.*::password$'\nc: \"x.*\"\nd: [.*a, {e: .*}]\nf: !!str x.*y\ng: ...*\n",
    "# .*z\nh: |\n  .*q\ni: x.*.*.*\n"])
def test_stars_after_a_dot_are_never_aliases(text, tmp_path):
    """What lets renderer.yamlload skip the alias walk when every "*" follows a ".": no
    such star is an alias token, for either loader, and a real alias still gets walked."""
    import yaml

    from renderer.errors import HieraDataError
    from renderer.yamlload import Loader, parse_yaml

    for loader in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        assert not any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text, loader))
    assert not Loader(text).aliased
    parse_yaml(text, tmp_path / "x.yaml")
    assert Loader(text + "j: &k [1]\nl: *k\n").aliased
    with pytest.raises(HieraDataError, match="aliases expand the document"):
        parse_yaml(text + bomb(), tmp_path / "x.yaml")


# --- templates --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}0123456789abcdef"
     "{% endfor %}{% endfor %}\n", "output over the 16.0 MiB limit (a runaway loop?)"),
    ("{% for i in range(10 ** 12) %}x{% endfor %}\n", "range() of more than 100000 items"),
])
def test_runaway_template_fails_its_service_in_bounded_time(scratch, text, message):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text": text}],
                     "other": [{"dest": "/etc/other/a.conf"}]})
    start = time.monotonic()
    code, out, err, rss = run_measured(*synth.options(), "svc", "other", timeout=60)
    assert time.monotonic() - start < 30
    assert code == 6, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"render: svc: {synth.templates / 'svc' / 'f0.j2'}:"), lines
    assert message in lines[0], lines
    assert rss < 400 * 1024  # kB
    assert (synth.rootfs("other") / "etc/other/a.conf").exists()


def test_template_time_is_bounded(scratch, run, monkeypatch):
    monkeypatch.setattr(bounds, "TEMPLATE_SECONDS", 1.0)
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "text":
                              "{% for i in range(100000) %}{% for j in range(100000) %}"
                              "{% endfor %}{% endfor %}\n"}],
                     "other": [{"dest": "/etc/other/a.conf"}]})
    start = time.monotonic()
    result = run(*synth.options(), "svc", "other", timeout=30)
    assert time.monotonic() - start < 10
    assert result.code == 6, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 1 and "f0.j2:1: rendering took over 1 s (a runaway loop?)" in lines[0]
    assert (synth.rootfs("other") / "etc/other/a.conf").exists()


def test_template_deadline_puts_back_the_embedding_programs_timer():
    import signal

    from renderer.templates import _deadline

    signal.setitimer(signal.ITIMER_REAL, 100)
    try:
        with _deadline(5):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert 90 < left <= 100


# --- unexpected exceptions --------------------------------------------------------------------

def test_bad_value_through_a_filter_fails_its_service_only(scratch, systemctl, run):
    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "restart": "container",
                              "text": "{{ lookup('n') | join(',') }}\n"}],
                     "other": [{"dest": "/etc/other/a.conf", "restart": "container"}]},
                    data={"n": 5})
    fake = systemctl()
    result = run(*synth.options(restart=True), *fake.options, "svc", "other")
    assert result.code == 6, (result.out, result.err)
    no_traceback(result.err)
    (line,) = result.err.splitlines()
    assert line.startswith("render: svc: ") and "f0.j2:1: TypeError" in line, line
    assert [c for c in fake.calls() if "other" in c]


def test_unexpected_exception_while_applying_is_confined(scratch, systemctl, run, monkeypatch):
    """A bug (here injected: commit raising RuntimeError for one service's file) fails that
    service alone, with exit 4; the others are written and restarted."""
    from renderer.system.real import RealSystem

    synth = scratch({"svc": [{"dest": "/etc/svc/a.conf", "restart": "container"}],
                     "other": [{"dest": "/etc/other/a.conf", "restart": "container"}]})
    commit = RealSystem.commit

    def broken(self, staged):
        if "/etc/svc/" in staged.path:
            self.discard(staged)
            raise RuntimeError("injected")
        return commit(self, staged)

    monkeypatch.setattr(RealSystem, "commit", broken)
    fake = systemctl()
    result = run(*synth.options(restart=True), *fake.options, "svc", "other")
    assert result.code == 6, (result.out, result.err)
    (line,) = result.err.splitlines()
    assert line.startswith("render: svc: internal error: RuntimeError"), line
    assert (synth.rootfs("other") / "etc/other/a.conf").exists()
    assert [c for c in fake.calls() if "other" in c] and not [c for c in fake.calls()
                                                             if "svc" in c.split()[-1]]
    assert temp_files(synth.machines) == []
