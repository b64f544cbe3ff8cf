"""Bad input, one case each, through the real CLI: one line naming file:line, key or unit; exit 4
(6 when the other service changed); nothing written for the broken service; the other one runs.

Both services are in sync at v1 first, then the data moves to v2 and one thing is broken in
``bad``. The write faults of the same list (read-only filesystem, full disk, EACCES) are in
test_faults.py, with real mounts; a unit that fails to start is tested with the restarts.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from synth import build


@pytest.fixture
def synth(tmp_path: Path, run):
    synth = build(tmp_path, {
        "good": [{"dest": "/etc/good/g.conf", "text": "g {{ lookup('v') }}\n"}],
        "bad": [{"dest": "/etc/bad/a.conf", "text": "a {{ lookup('v') }}\n"},
                {"dest": "/etc/bad/sub/b.conf", "text": "b {{ lookup('v') }}\n"}],
    }, data={"v": 1})
    assert run(*synth.options(), "--all").code == 2
    synth.set_data({"v": 2})
    return synth


def _break(synth, case: str) -> str:
    """Plant one fault in ``bad``; returns the expected error line as a regex."""
    bad_dir = synth.templates / "bad"
    data = synth.hieradata / "data" / "services" / "bad.yaml"
    data.parent.mkdir(exist_ok=True)
    if case == "yaml syntax":
        data.write_text("v: 3\nw: [unclosed\nx: 1\n")
        return rf"{re.escape(str(data))}:3:2: .*"
    if case == "unknown service":
        shutil.rmtree(bad_dir)
        return rf"{re.escape(str(synth.templates))}: unknown service 'bad' \(known: good\)"
    if case == "template syntax":
        (bad_dir / "f1.j2").write_text("b\n{% if %}\n")
        return rf"{re.escape(str(bad_dir / 'f1.j2'))}:2: .*"
    if case == "undefined variable":
        (bad_dir / "f1.j2").write_text("b\n\n{{ no_such_variable }}\n")
        return rf"{re.escape(str(bad_dir / 'f1.j2'))}:3: .*'no_such_variable' is undefined.*"
    if case == "interpolation loop":
        data.write_text("v: \"%{lookup('w')}\"\nw: \"%{lookup('v')}\"\n")
        return rf"{re.escape(str(bad_dir / 'f0.j2'))}:1: Recursive lookup detected in \[v, w\]"
    if case == "missing rootfs":
        shutil.rmtree(synth.rootfs("bad"))
        return (rf"{re.escape(str(synth.rootfs('bad')))}: container rootfs does not exist: "
                r"machine 'bad' is not provisioned yet")
    if case == "missing directory":
        shutil.rmtree(synth.rootfs("bad") / "etc/bad/sub")
        return (rf"{re.escape(str(synth.rootfs('bad')))}/etc/bad/sub/b.conf: directory "
                r"'/etc/bad/sub' does not exist \(set create_dirs: true in service.yaml to "
                r"create it\)")
    if case == "non-UTF-8 data":
        data.write_bytes(b"v: 3\nw: caf\xe9\n")
        return rf"{re.escape(str(data))}:2: invalid UTF-8 byte 0xe9"
    if case == "missing user":
        (bad_dir / "service.yaml").write_text(
            (bad_dir / "service.yaml").read_text().replace("dest: /etc/bad/sub/b.conf",
                                                           "dest: /etc/bad/sub/b.conf\n  owner: "
                                                           "nova"))
        return (rf"{re.escape(str(bad_dir / 'service.yaml'))}:\d+: user 'nova' does not exist "
                rf"in container bad \({re.escape(str(synth.rootfs('bad')))}/etc/passwd\)")
    raise AssertionError(case)


CASES = ["yaml syntax", "unknown service", "template syntax", "undefined variable",
         "interpolation loop", "missing rootfs", "missing directory", "non-UTF-8 data",
         "missing user"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_only_its_service(synth, run, case: str):
    expected = _break(synth, case)
    rootfs = synth.rootfs("bad")
    before = sorted(p.name for p in rootfs.rglob("*")) if rootfs.exists() else None
    result = run(*synth.options(), "good", "bad")
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert re.fullmatch(f"render: bad: {expected}", lines[0]), lines[0]
    assert result.code == 6  # 2 (good changed) | 4 (bad failed)
    assert (synth.rootfs("good") / "etc/good/g.conf").read_text() == "g 2\n"
    if rootfs.exists():
        assert sorted(p.name for p in rootfs.rglob("*")) == before  # nothing new
        assert (rootfs / "etc/bad/a.conf").read_text() == "a 1\n"
        if (rootfs / "etc/bad/sub").exists():
            assert (rootfs / "etc/bad/sub/b.conf").read_text() == "b 1\n"
    # alone, the broken service exits exactly 4
    assert run(*synth.options(), "bad").code == 4


def test_invalid_hiera_yaml_fails_every_service_and_writes_nothing(synth, run):
    (synth.hieradata / "hiera.yaml").write_text("version: 5\nhierarchy:\n  - {name: x}\n")
    result = run(*synth.options(), "--all")
    assert result.code == 4
    lines = result.err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["bad", "good"], result.err
    for line in lines:
        assert re.fullmatch(rf"render: \w+: {re.escape(str(synth.hieradata))}/hiera.yaml:3: "
                            r"hierarchy 'x': one of .* must be declared .*", line), line
    assert (synth.rootfs("good") / "etc/good/g.conf").read_text() == "g 1\n"
    assert (synth.rootfs("bad") / "etc/bad/a.conf").read_text() == "a 1\n"


def test_create_dirs_creates_only_when_the_definition_says_so(synth, run):
    shutil.rmtree(synth.rootfs("bad") / "etc/bad/sub")
    definition = synth.templates / "bad" / "service.yaml"
    definition.write_text(definition.read_text().replace(
        "dest: /etc/bad/sub/b.conf", "dest: /etc/bad/sub/b.conf\n  create_dirs: true"))
    result = run(*synth.options(), "bad")
    assert result.code == 2, result.err
    assert (synth.rootfs("bad") / "etc/bad/sub/b.conf").read_text() == "b 2\n"
