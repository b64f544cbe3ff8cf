"""Escape probes planted in real rootfs trees, run through the real CLI.

Each probe is one service with its own container rootfs holding one trap: absolute and relative
symlinks, ``..`` chains, symlinked parent directories, a symlink to ``/dev/null``, a FIFO, a device
node, a hard link to a file outside. The whole sandbox (everything under tmp_path but the state
dir) is hashed before and after: the only entries allowed to change are the files each probe is
expected to write inside its own root. The host's ``/dev/null`` must still be the null device and
no file named after this run's token may appear in the host's ``/etc``, ``/tmp`` or ``/``.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest
from synth import temp_files, tree_hash

NULL_DEV = os.makedev(1, 3)


def _null_is_intact() -> bool:
    st = os.stat("/dev/null")
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == NULL_DEV


@pytest.fixture
def probes(tmp_path: Path, scratch):
    token = secrets.token_hex(4)
    name = f"probe-{token}.conf"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.conf").write_text("outside, must not change\n")
    (outside / "hard.conf").write_text("hard-linked from a rootfs, must not change\n")

    def entry(dest: str, **extra):
        return [{"dest": dest, "text": f"written by render {token}\n", **extra}]

    services = {
        # parent symlinks
        "abs-dir": entry(f"/etc/app/{name}"),
        "abs-host-path": entry(f"/etc/app/{name}"),
        "rel-out": entry(f"/etc/app/{name}"),
        "dotdot-chain": entry(f"/etc/app/{name}"),
        "two-hops": entry(f"/etc/app/{name}"),
        "dir-loop": entry(f"/etc/loop/{name}"),
        # final component
        "final-null": entry("/etc/app/null.conf"),
        "final-out": entry("/etc/app/victim.conf"),
        "fifo": entry("/etc/app/fifo.conf"),
        "device": entry("/etc/app/dev.conf"),
        "hardlink": entry("/etc/app/hard.conf"),
        # follow_symlink: true, still confined
        "follow-null": entry("/etc/app/null.conf", follow_symlink=True),
        "follow-out": entry("/etc/app/victim.conf", follow_symlink=True),
        "follow-in": entry("/etc/app/app.conf", follow_symlink=True),
        "follow-loop": entry("/etc/app/loop.conf", follow_symlink=True),
        # host-side destination, confined to --host-root
        "host-side": entry(f"/etc/systemd/nspawn/{name}", root="host"),
    }
    synth = scratch(services)
    r = synth.rootfs

    def link(path: Path, target: str) -> None:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)

    link(r("abs-dir") / "etc/app", "/etc")
    link(r("abs-host-path") / "etc/app", str(outside))
    link(r("rel-out") / "etc/app", "../../../outside")  # naively: <tmp>/outside
    (r("rel-out") / "outside").mkdir()
    link(r("dotdot-chain") / "etc/app", "./..//../.././outside/")
    (r("dotdot-chain") / "outside").mkdir()
    link(r("two-hops") / "etc/app", "/srv/hop")
    link(r("two-hops") / "srv/hop", "../../../outside")
    (r("two-hops") / "outside").mkdir()
    link(r("dir-loop") / "etc/loop", "/etc/loop")
    link(r("final-null") / "etc/app/null.conf", "/dev/null")
    link(r("final-out") / "etc/app/victim.conf", str(outside / "victim.conf"))
    os.mkfifo(r("fifo") / "etc/app/fifo.conf")
    os.mknod(r("device") / "etc/app/dev.conf", 0o666 | stat.S_IFCHR, NULL_DEV)
    os.link(outside / "hard.conf", r("hardlink") / "etc/app/hard.conf")
    link(r("follow-null") / "etc/app/null.conf", "/dev/null")
    (r("follow-null") / "dev").mkdir()
    os.mknod(r("follow-null") / "dev/null", 0o666 | stat.S_IFCHR, NULL_DEV)
    link(r("follow-out") / "etc/app/victim.conf", "../../../../outside/victim.conf")
    (r("follow-out") / "outside").mkdir()
    link(r("follow-in") / "etc/app/app.conf", "/etc/real/app.conf")
    (r("follow-in") / "etc/real").mkdir()
    link(r("follow-loop") / "etc/app/loop.conf", "loop.conf")
    link(synth.host / "etc/systemd/nspawn", "/nspawn-real")
    (synth.host / "nspawn-real").mkdir()
    return synth, token, name, outside


def test_escape_probes_touch_nothing_outside(probes, run):
    synth, token, name, outside = probes
    before = tree_hash(synth.base, skip=(synth.state,))
    assert _null_is_intact()

    result = run(*synth.options(), "--all", timeout=60)

    r = synth.rootfs
    expected_writes = {
        r("abs-dir") / "etc" / name,                       # /etc/app -> /etc inside the rootfs
        r("rel-out") / "outside" / name,                   # ".." stops at the rootfs
        r("dotdot-chain") / "outside" / name,
        r("two-hops") / "outside" / name,
        r("hardlink") / "etc/app/hard.conf",               # rename breaks the link
        r("follow-out") / "outside/victim.conf",           # followed, inside the rootfs
        r("follow-in") / "etc/real/app.conf",
        synth.host / "nspawn-real" / name,                 # host side: inside --host-root
    }
    after = tree_hash(synth.base, skip=(synth.state,))
    changed = {Path(p) for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed == expected_writes, result.err
    for path in expected_writes:
        assert path.read_text() == f"written by render {token}\n"
    assert (outside / "victim.conf").read_text() == "outside, must not change\n"
    assert (outside / "hard.conf").read_text() == "hard-linked from a rootfs, must not change\n"
    assert os.readlink(r("follow-in") / "etc/app/app.conf") == "/etc/real/app.conf"

    # the host itself: /dev/null intact, nothing named after this run anywhere obvious
    assert _null_is_intact()
    for directory in ("/etc", "/tmp", "/", "/etc/systemd/nspawn", "/srv"):
        assert not Path(directory, name).exists()
    assert not list(synth.base.glob(f"**/{name}.*")) and not temp_files(synth.base)

    # every refused probe: one line naming its service and path, exit 4 for the run
    assert result.code == 6, result.err
    errors = {line.split(":")[1].strip(): line for line in result.err.splitlines()}
    assert sorted(errors) == sorted(["abs-host-path", "dir-loop", "final-null", "final-out",
                                     "fifo", "device", "follow-null", "follow-loop"]), result.err
    assert "does not exist" in errors["abs-host-path"]
    assert "too many levels of symbolic links" in errors["dir-loop"]
    assert "too many levels of symbolic links" in errors["follow-loop"]
    for service in ("final-null", "final-out"):
        assert f"{r(service)}/etc/app/" in errors[service]
        assert "refusing to write through it" in errors[service]
    assert "is a symlink to '/dev/null'" in errors["final-null"]
    assert f"is a symlink to '{outside}/victim.conf'" in errors["final-out"]
    assert "is a FIFO, not a regular file" in errors["fifo"]
    for service in ("device", "follow-null"):
        assert "is a device node, not a regular file" in errors[service]
    assert len(result.err.splitlines()) == len(errors)


def test_noop_over_the_probes_writes_nothing(probes, run):
    synth, _, _, _ = probes
    before = tree_hash(synth.base)
    result = run(*synth.options(), "--all", "--noop", timeout=60)
    assert result.code == 6, result.err
    assert tree_hash(synth.base) == before
