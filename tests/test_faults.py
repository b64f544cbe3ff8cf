"""Write faults with real parts: a full tmpfs, a read-only bind mount, a bind-mounted target
(EBUSY), EACCES from a process without capabilities, and SIGKILL at random points (the loop is
tests/killloop.py).

Mounts are made only inside a private mount namespace (``unshare --mount --propagation private``)
that holds just the shell running the scenario and the ``render`` it starts: when the shell exits,
the namespace and its mounts are gone, so nothing can leak onto the host, even if a test fails.
The shell prints its findings (hashes, listings) into files under tmp_path for the test to read.

EACCES as root: ``setpriv --bounding-set=-all --inh-caps=-all`` starts render as uid 0 without any
capability (no CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN), so the kernel's ordinary permission check
applies to it: a directory owned by another uid with mode 0755 refuses it with EACCES, exactly as
it would refuse an unprivileged writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from synth import temp_files

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
RENDER = f"{shlex.quote(sys.executable)} -m renderer"


def ns_run(script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) as the only process of a private mount namespace."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, env=ENV,
                          check=False)


def render_in_ns(synth, setup: str, after: str, *args: str) -> tuple[int, str, str, str]:
    """setup; render ARGS; after — in one private mount namespace. Returns rc, out, err, after."""
    out = synth.base / "ns"
    out.mkdir(exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [*synth.options(), *args])
    done = ns_run(f"""{setup}
rc=0; {RENDER} {command} >{out}/out 2>{out}/err || rc=$?
echo $rc >{out}/rc
{{ {after} ; }} >{out}/after 2>&1
""")
    assert done.returncode == 0, done.stderr
    return (int((out / "rc").read_text()), (out / "out").read_text(), (out / "err").read_text(),
            (out / "after").read_text())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def two_services(scratch, second_dir: str):
    """``victim`` writes a.conf, then b.conf in ``second_dir`` (where the fault is); ``other``
    has no fault. Both are rendered once (v1) before the fault, then the data moves to v2."""
    synth = scratch({
        "victim": [{"dest": "/etc/victim/a.conf", "text": "a {{ lookup('v') }}\n"},
                   {"dest": f"{second_dir}/b.conf", "text": "b {{ lookup('v') }}\n"}],
        "other": [{"dest": "/etc/other/o.conf", "text": "o {{ lookup('v') }}\n"}],
    }, data={"v": 1})
    return synth


def assert_victim_untouched(synth, rc: int, err: str, message: str) -> None:
    lines = err.splitlines()
    assert rc == 6, err  # the other service changed (2), the victim failed (4)
    assert len(lines) == 1 and lines[0].startswith("render: victim: ") and message in lines[0], err
    rootfs = synth.rootfs("victim")
    assert (rootfs / "etc/victim/a.conf").read_text() == "a 1\n"  # staged, never committed
    assert (synth.rootfs("other") / "etc/other/o.conf").read_text() == "o 2\n"
    assert not temp_files(synth.base)


def test_full_disk_keeps_the_old_file(scratch):
    synth = two_services(scratch, "/etc/victim/disk")
    disk = synth.rootfs("victim") / "etc/victim/disk"
    rc, out, err, after = render_in_ns(
        synth,
        f"""mount -t tmpfs -o size=256k render-test-full {disk}
{RENDER} {' '.join(map(shlex.quote, synth.options()))} --all >/dev/null || [ $? -eq 2 ]
echo 'v: 2' > {synth.hieradata}/data/common.yaml
dd if=/dev/zero of={disk}/filler bs=4k >/dev/null 2>&1 || true""",
        f"cat {disk}/b.conf; ls -A {disk}; df -k {disk} | tail -1", "--all")
    assert_victim_untouched(synth, rc, err, "No space left on device")
    assert f"{disk}/b.conf: cannot write" in err
    content, listing = after.split("\n", 1)
    assert content == "b 1"
    assert listing.split()[:2] == ["b.conf", "filler"]  # no temp file left on the full disk


def test_read_only_bind_mount(scratch):
    synth = two_services(scratch, "/etc/victim/ro")
    ro = synth.rootfs("victim") / "etc/victim/ro"
    assert _render(synth, "--all").returncode == 2
    synth.set_data({"v": 2})
    rc, out, err, after = render_in_ns(
        synth, f"mount --bind {ro} {ro}; mount -o remount,bind,ro {ro}",
        f"cat {ro}/b.conf", "--all")
    assert_victim_untouched(synth, rc, err, "Read-only file system")
    assert after == "b 1\n" and (ro / "b.conf").read_text() == "b 1\n"


def test_eacces_without_capabilities(scratch):
    synth = two_services(scratch, "/etc/victim/denied")
    assert _render(synth, "--all").returncode == 2
    denied = synth.rootfs("victim") / "etc/victim/denied"
    os.chown(denied, 163, 163)
    denied.chmod(0o755)
    synth.set_data({"v": 2})
    done = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--",
                           sys.executable, "-m", "renderer", *synth.options(), "--all"],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=60)
    assert_victim_untouched(synth, done.returncode, done.stderr, "Permission denied")
    assert f"{denied}/b.conf: cannot write" in done.stderr
    assert (denied / "b.conf").read_text() == "b 1\n"


def test_bind_mounted_target_is_rewritten_in_place(tmp_path: Path, scratch):
    """rename() onto a mount point fails with EBUSY: the file is rewritten in place, reported."""
    synth = scratch({
        "bound": [{"dest": "/etc/bound/b.conf", "text": "b {{ lookup('v') }}\n", "mode": "0640"}],
    }, data={"v": 1})
    source = tmp_path / "host-side.conf"  # what nspawn --bind=<source>:/etc/bound/b.conf binds
    source.write_text("b 1\n")
    target = synth.rootfs("bound") / "etc/bound/b.conf"
    target.write_text("placeholder\n")
    synth.set_data({"v": 2})
    rc, out, err, after = render_in_ns(
        synth, f"mount --bind {source} {target}",
        f"cat {target}; stat -c %a {target}; ls -A {target.parent}", "bound")
    assert (rc, err) == (2, "")
    assert f"bound: note: {target}: bind mount: rewritten in place, not atomically" in out
    assert after.split() == ["b", "2", "640", "b.conf"]  # no temp file left beside it
    assert source.read_text() == "b 2\n"     # the bind source now holds the new content
    assert target.read_text() == "placeholder\n"  # the file under the mount point: untouched


def _render(synth, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "renderer", *synth.options(), *args],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=timeout)


# --- SIGKILL at random points --------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_at_random_points_never_leaves_a_mixed_file(tmp_path: Path):
    """tests/killloop.py: 100+ kills over 50 services, on a tmpfs in a private mount namespace."""
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           str(REPO / "tests" / "killloop.py"), str(tmp_path / "tree")],
                          capture_output=True, text=True, cwd=REPO, env=ENV, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    stats = json.loads(done.stdout.splitlines()[-1])
    print(f"\nsigkill: {stats}")
    assert stats["kills"] >= 100 and stats["files"] == 100
    assert stats["partial"] == 0  # and killloop.py checked: no temp file after the next run
    # the kills must have landed in the write phase, or the test proves nothing
    assert stats["mid_apply"] > 0
