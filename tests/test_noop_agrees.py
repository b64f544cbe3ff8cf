"""--noop and a real run on the same trees agree on every file and every exit code.

Each case builds the same deployment twice; ``--noop`` runs on one copy and a real run on the
other. The noop's "would <verb> <file>" lines must be the real run's "<verb> <file>" lines, the
errors and exit codes must be the same, and the noop copy must be left byte-identical.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import render
from synth import LINE, LINK, PASSWORD, Synth, build, build_edits, tree_hash

Case = Callable[[Path], Synth]


def plain(base: Path, **entry: object) -> Synth:
    return build(base, {"app": [{"dest": "/etc/app/app.conf", **entry}]})


def private_users(base: Path) -> Synth:
    synth = plain(base, owner="70000")
    for path in (synth.rootfs("app"), *synth.rootfs("app").rglob("*")):
        os.lchown(path, 327680, 327680)  # as systemd-nspawn --private-users shifts a rootfs
    return synth


def missing_directory(base: Path) -> Synth:
    synth = plain(base)
    (synth.rootfs("app") / "etc/app").rmdir()
    return synth


def create_dirs(base: Path) -> Synth:
    synth = plain(base, create_dirs=True)
    (synth.rootfs("app") / "etc/app").rmdir()
    return synth


def final_symlink(base: Path) -> Synth:
    synth = plain(base)
    (synth.rootfs("app") / "etc/app/app.conf").symlink_to("/etc/passwd")
    return synth


def fifo(base: Path) -> Synth:
    synth = plain(base)
    os.mkfifo(synth.rootfs("app") / "etc/app/app.conf")
    return synth


def mode_and_owner(base: Path) -> Synth:
    synth = plain(base, mode="0640", owner="svc")
    (synth.rootfs("app") / "etc/app/app.conf").write_text("x\n")
    return synth


def symlinked_parent(base: Path) -> Synth:
    synth = plain(base)
    rootfs = synth.rootfs("app")
    (rootfs / "etc/app").rmdir()
    (rootfs / "srv/app").mkdir(parents=True)
    (rootfs / "etc/app").symlink_to("/srv/app")  # absolute: resolved inside the rootfs
    return synth


def one_bad_file(base: Path) -> Synth:
    synth = build(base, {"app": [{"dest": "/etc/app/app.conf"},
                                 {"dest": "/etc/app/other.conf", "owner": "nosuch"}],
                         "web": [{"dest": "/etc/web/web.conf"}]})
    return synth


def edits(base: Path) -> Synth:
    return build_edits(base, [LINK, LINE, PASSWORD])


def wrong_link(base: Path) -> Synth:
    synth = build_edits(base, [LINK, LINE])
    wants = synth.rootfs("app") / LINK["dest"].lstrip("/")
    wants.parent.mkdir(parents=True)
    wants.symlink_to("/etc/passwd")
    return synth


def file_in_place_of_link(base: Path) -> Synth:
    synth = wrong_link(base)
    wants = synth.rootfs("app") / LINK["dest"].lstrip("/")
    wants.unlink()
    wants.write_text("[Unit]\n")
    return synth


def edit_of_a_missing_file(base: Path) -> Synth:
    return build_edits(base, [LINK, LINE, PASSWORD], securetty=None)


CASES: dict[str, Case] = {
    "plain": plain, "private-users": private_users, "missing-directory": missing_directory,
    "create-dirs": create_dirs, "final-symlink": final_symlink, "fifo": fifo,
    "mode-and-owner": mode_and_owner, "symlinked-parent": symlinked_parent,
    "one-bad-file": one_bad_file, "edits": edits, "wrong-link": wrong_link,
    "file-in-place-of-link": file_in_place_of_link,
    "edit-of-a-missing-file": edit_of_a_missing_file,
}
FILE_LINE = re.compile(r"^(\S+): (?:would )?(create|update|fix|remove|not written) (\S+)")


def file_lines(out: str, base: Path) -> list[tuple[str, ...]]:
    return [m.groups() for line in out.replace(str(base), "<tree>").splitlines()
            if (m := FILE_LINE.match(line))]


@pytest.mark.parametrize("name", CASES)
def test_noop_and_real_run_agree(name: str, tmp_path: Path):
    noop_tree = CASES[name](tmp_path / "noop")
    real_tree = CASES[name](tmp_path / "real")
    services = ["--all"]
    before = tree_hash(noop_tree.base)
    noop = render("--noop", *services, *noop_tree.options())
    assert tree_hash(noop_tree.base) == before  # --noop changed nothing, not even the state
    untouched = {m.name: tree_hash(m) for m in real_tree.machines.iterdir()}
    real = render(*services, *real_tree.options())
    assert noop.code == real.code, (noop.out + noop.err, real.out + real.err)
    failing = set(re.findall(r"^render: (\S+): ", real.err, re.M))
    assert noop.err.replace(str(noop_tree.base), "<tree>") == \
        real.err.replace(str(real_tree.base), "<tree>")
    assert file_lines(noop.out, noop_tree.base) == file_lines(real.out, real_tree.base)
    # a failed service writes nothing of its own: no file line of it says it was written
    written = {line[0] for line in file_lines(real.out, real_tree.base) if line[1] != "not written"}
    assert not failing & written, real.out
    assert all(tree_hash(real_tree.rootfs(name)) == untouched[name] for name in failing)
    assert bool(failing) == bool(real.code & 4)
    again = render("--noop", *services, *real_tree.options())
    assert again.code == (real.code & 4), again.out  # in sync after the real run, or failing


def test_private_users_owner_out_of_range_fails_both_modes_alike(tmp_path: Path):
    synth = private_users(tmp_path / "t")
    for extra in (["--noop"], []):
        result = render(*extra, "app", *synth.options())
        assert result.code == 4
        assert result.err.endswith("uid 70000 is outside the container's private range "
                                   "(0-65535)\n"), result.err
        assert result.out == "render: nothing changed; 1 of 1 service(s) failed" + \
            (" (noop)\n" if extra else "\n")
