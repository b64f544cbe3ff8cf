"""The state dir as an attacker meets it: strict modes against a real second user (nobody), the
template cache raced and planted, planted host keys, odd state files, forged kept-version names.

A test that needs nobody to reach its files builds its tree under a directory of its own in /tmp
(mode 0711: pytest's own base is 0700), removed afterwards.
"""

from __future__ import annotations

import io
import json
import marshal
import os
import pickle
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import render
from jinja2.bccache import bc_magic
from synth import Synth, build

from renderer.bccache import SignedBytecodeCache, cache_key

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups"]
SERVICES = {"app": [{"dest": "/etc/app/app.conf", "text": "v={{ lookup('v') }}\n"}],
            "other": [{"dest": "/etc/other/other.conf", "text": "w={{ lookup('v') }}\n"}]}


@pytest.fixture
def base() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="render-statedir-", dir="/tmp"))
    directory.chmod(0o711)  # nobody may pass through, not list or write
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def synth(base: Path) -> Synth:
    return build(base / "t", SERVICES, data={"v": 1})


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *command], capture_output=True, text=True, timeout=30,
                          check=False)


def snapshot(top: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes() if p.is_file() else b"", p.lstat().st_mtime_ns)
            for p in sorted(top.rglob("*"))}


def one_line(result, *words: str) -> None:
    lines = result.err.splitlines()
    assert result.code == 4 and len(lines) == 1, result
    assert all(w in lines[0] for w in words), lines
    assert "Traceback" not in result.err


# --- strict modes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["real", "noop", "rollback"])
def test_ancestor_owned_by_another_user_refuses_every_kind_of_run(synth: Synth, mode: str):
    assert render(*synth.options(), "app").code == 2
    os.chown(synth.base, NOBODY.pw_uid, NOBODY.pw_gid)  # nobody could rename state away
    extra = {"real": ["app"], "noop": ["app", "--noop"], "rollback": ["--rollback", "app"]}[mode]
    before = snapshot(synth.base)
    one_line(render(*synth.options(), *extra), str(synth.base), "owned by uid 65534",
             "strict modes")
    assert snapshot(synth.base) == before


def test_ancestor_writable_by_others_refuses(synth: Synth):
    assert render(*synth.options(), "app").code == 2
    synth.base.chmod(0o777)
    made = as_nobody("mkdir", str(synth.base / "planted"))  # really writable by another user
    assert made.returncode == 0, made.stderr
    one_line(render(*synth.options(), "app", "--noop"), str(synth.base),
             "writable by group or others", "0777")
    synth.base.chmod(0o755)
    assert render(*synth.options(), "app", "--noop").code == 0


def test_state_dir_owned_or_writable_by_nobody_refuses(synth: Synth):
    assert render(*synth.options(), "app").code == 2
    os.chown(synth.state, NOBODY.pw_uid, NOBODY.pw_gid)
    one_line(render(*synth.options(), "app"), f"{synth.state}: state dir is owned by uid 65534")
    os.chown(synth.state, 0, 0)
    synth.state.chmod(0o1777)  # sticky does not help the state dir itself
    one_line(render(*synth.options(), "app", "--noop"), "writable by group or others")
    synth.state.chmod(0o700)
    os.chown(synth.state / "services", NOBODY.pw_uid, NOBODY.pw_gid)
    result = render(*synth.options(), "app", "other")
    assert result.code == 4 and "services: state subdirectory is owned by uid 65534" in result.err


def test_sticky_root_dir_allowed_only_with_our_own_dirs_below(base: Path):
    sticky = base / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)  # as /tmp
    ours = build(sticky / "ours", SERVICES, data={"v": 1})
    assert render(*ours.options(), "app").code == 2
    assert (ours.state.stat().st_mode & 0o777) == 0o700
    made = as_nobody("mkdir", "-m", "0755", str(sticky / "theirs"))
    assert made.returncode == 0, made.stderr
    theirs = Synth(sticky / "theirs")  # root's tree under a dir nobody made and may rename
    one_line(render(*ours.options(), "app", "--state-dir", str(theirs.state)),
             str(sticky / "theirs"), "owned by uid 65534")
    assert not theirs.state.exists()
    # a symlink planted by nobody in the sticky dir is not followed, even to a good dir
    made = as_nobody("ln", "-s", str(ours.state), str(sticky / "link"))
    assert made.returncode == 0, made.stderr
    one_line(render(*ours.options(), "app", "--noop", "--state-dir", str(sticky / "link")),
             "symlink on the way to the state dir is owned by uid 65534")


def test_missing_state_dir_is_fine_for_noop_and_made_0700(synth: Synth):
    assert render(*synth.options(), "app", "--noop").code == 2
    assert not synth.state.exists()
    assert render(*synth.options(), "app").code == 2
    assert synth.state.stat().st_mode & 0o7777 == 0o700


# --- the template cache ---------------------------------------------------------------------------

def plant_evil(cache: Path, marker: Path, key: bytes | None) -> int:
    """Rewrite every compiled template in ``cache`` with code that creates ``marker`` when
    loaded: same name and source checksum, so Jinja would run it. Signed with ``key`` if given."""
    code = marshal.dumps(compile(f"open({str(marker)!r}, 'w').close()\n", "<evil>", "exec"))
    planted = 0
    for entry in cache.iterdir():
        data = entry.read_bytes()[32:]
        stream = io.BytesIO(data)
        assert stream.read(len(bc_magic)) == bc_magic
        checksum = pickle.load(stream)
        payload = bc_magic + pickle.dumps(checksum, 2) + code
        mac = b"\0" * 32
        if key is not None:
            cache_obj = SignedBytecodeCache(None, cache_key(key), False)  # type: ignore[arg-type]
            mac = cache_obj._mac(entry.name, payload)
        entry.write_bytes(mac + payload)
        planted += 1
    return planted


def test_planted_bytecode_never_runs_and_is_replaced(synth: Synth, base: Path):
    assert render(*synth.options(), "app").code == 2
    cache = synth.state / "cache" / "jinja"
    marker = base / "marker"
    assert plant_evil(cache, marker, key=None) == 1
    planted = {e.name: e.read_bytes() for e in cache.iterdir()}
    assert render(*synth.options(), "app", "--noop").code == 0
    synth.set_data({"v": 2})
    assert render(*synth.options(), "app").code == 2
    assert not marker.exists()
    assert {e.name: e.read_bytes() for e in cache.iterdir()} != planted  # overwritten, signed
    # the control: the same plant signed with the host key is loaded (and runs), so the test
    # would see a cache that trusted its files
    plant_evil(cache, marker, key=(synth.state / "hmac.key").read_bytes())
    render(*synth.options(), "app", "--noop")
    assert marker.exists()


def test_nobody_racing_the_cache_dir_never_gets_code_run(synth: Synth, base: Path):
    assert render(*synth.options(), "app").code == 2
    evil = base / "evil"
    shutil.copytree(synth.state / "cache" / "jinja", evil)
    marker = base / "marker"
    plant_evil(evil, marker, key=None)
    shutil.chown(evil, NOBODY.pw_name)
    for entry in evil.iterdir():
        shutil.chown(entry, NOBODY.pw_name)
    cache = synth.state / "cache"
    synth.state.chmod(0o711)  # nobody may reach cache/ (not list or write the state dir)
    racer_script = f"""
import os, time
cache, evil = {str(cache)!r}, {str(evil)!r}
done = 0
end = time.monotonic() + 30
while time.monotonic() < end and not os.path.exists({str(base / 'stop')!r}):
    for op in (lambda: os.rename(cache + '/jinja', cache + '/real'),
               lambda: os.symlink(evil, cache + '/jinja'),
               lambda: os.unlink(cache + '/jinja'),
               lambda: os.rename(cache + '/real', cache + '/jinja')):
        try:
            op()
            done += 1
        except OSError:
            pass
print(done)
"""
    for owned in (False, True):
        if owned:  # nobody owns the cache dir: the swaps succeed, and render refuses
            os.chown(cache, NOBODY.pw_uid, NOBODY.pw_gid)
        (base / "stop").unlink(missing_ok=True)
        racer = subprocess.Popen([*AS_NOBODY, "/usr/bin/python3", "-c", racer_script],
                                 stdout=subprocess.PIPE, text=True)
        try:
            codes = set()
            for index in range(20):
                synth.set_data({"v": 10 + index})
                codes.add(render(*synth.options(), "app", "--noop").code)
                codes.add(render(*synth.options(), "app").code)
                time.sleep(0.01)
        finally:
            (base / "stop").touch()
            swaps = int(racer.communicate(timeout=30)[0])
        assert not marker.exists()
        if owned:
            assert swaps > 0 and codes == {4}, (swaps, codes)
        else:
            assert swaps == 0 and codes == {2}, (swaps, codes)  # only root can touch it


# --- the host key ---------------------------------------------------------------------------------

def _nobody_owned(path: Path) -> None:
    path.write_bytes(b"k" * 32)
    path.chmod(0o600)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)


@pytest.mark.parametrize("plant,words", [
    (lambda p: p.symlink_to("/etc/hostname"), "is a symlink"),
    (lambda p: os.mkfifo(p, 0o600), "not a regular file"),
    (lambda p: p.mkdir(mode=0o700), "not a regular file"),
    (_nobody_owned, "owned by uid 65534"),
    (lambda p: (p.write_bytes(b"k" * 32), p.chmod(0o644)), "mode 0644"),
    (lambda p: (p.write_bytes(b"k" * 16), p.chmod(0o600)), "16 bytes, not 32"),
])
def test_planted_host_key_is_refused_not_replaced(synth: Synth, plant, words: str):
    assert render(*synth.options(), "app").code == 2
    key = synth.state / "hmac.key"
    key.unlink()
    plant(key)
    before = os.lstat(key)
    for extra in ((), ("--noop",)):
        one_line(render(*synth.options(), "app", *extra, timeout=10), str(key), words)
    after = os.lstat(key)
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == \
        (before.st_ino, before.st_mtime_ns, before.st_mode)


# --- odd state files fail their own service -------------------------------------------------------

@pytest.mark.parametrize("plant,words", [
    (lambda p: os.mkfifo(p, 0o600), "not a regular file"),
    (lambda p: p.symlink_to("/etc/passwd"), "is a symlink"),
    (lambda p: p.mkdir(mode=0o700), "not a regular file"),
    (lambda p: (p.write_bytes(b"[" * 100_000), p.chmod(0o600)), "nested too deeply"),
    (lambda p: (p.write_bytes(b'{"format": 2, "files": {"k": {"hash": null, "at": "t", '
                              b'"versions": [{"blob": null, "uid": 1e999, "gid": 0, '
                              b'"mode": 0, "at": "t"}]}}}'), p.chmod(0o600)),
     "corrupt state file"),
    (lambda p: (p.write_bytes(b'{"format": 2, "units": []}'), p.chmod(0o600)),
     "corrupt state file"),
    (lambda p: (p.write_bytes(b"{}"), os.truncate(p, 1 << 40), p.chmod(0o600)),
     "more than the"),
])
def test_malformed_state_file_fails_that_service_only(synth: Synth, plant, words: str):
    assert render(*synth.options(), "app", "other").code == 2
    state = synth.state / "services" / "app.json"
    state.unlink()
    plant(state)
    synth.set_data({"v": 2})
    start = time.monotonic()
    result = render(*synth.options(), "app", "other", timeout=10)
    assert time.monotonic() - start < 5  # a FIFO is never waited on
    assert result.code == 6 and "Traceback" not in result.err  # changes and a failure
    errors = [line for line in result.err.splitlines() if "app:" in line]
    assert len(errors) == 1 and str(state) in errors[0] and words in errors[0], result.err
    assert (synth.rootfs("other") / "etc/other/other.conf").read_text() == "w=2\n"
    assert (synth.rootfs("app") / "etc/app/app.conf").read_text() == "v=1\n"


@pytest.mark.parametrize("mode", [(), ("--rollback",)])
def test_forged_kept_version_name_deletes_nothing(synth: Synth, base: Path, mode):
    victim = base / "victim"
    victim.write_text("host file\n")
    assert render(*synth.options(), "app").code == 2
    synth.set_data({"v": 2})
    assert render(*synth.options(), "app").code == 2  # keeps version 1
    state = synth.state / "services" / "app.json"
    document = json.loads(state.read_text())
    (record,) = document["files"].values()
    forged = os.path.relpath(victim, synth.state / "versions" / "app")
    record["versions"][-1]["blob"] = forged
    state.write_text(json.dumps(document))
    synth.set_data({"v": 3})
    args = ("--rollback", "app") if mode else ("app",)
    result = render(*synth.options(), *args, "--keep-versions", "0")
    assert result.code == 4 and "is not a sha256" in result.err, result
    assert len(result.err.splitlines()) == 1 and str(state) in result.err
    assert victim.read_text() == "host file\n"
