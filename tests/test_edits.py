"""Link, line and password destinations (renderer/edits.py) on real trees: real symlinks, a real
second owner, a real tmpfs that fills up, and ``--noop`` against the real run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, render
from synth import (
    LINE,
    LINK,
    PASSWORD,
    ROOT_HASH,
    SECURETTY,
    SHADOW,
    build_edits,
    temp_files,
    tree_hash,
)

WANTS = "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
TARGET = "/lib/systemd/system/systemd-networkd.service"


def test_first_run_links_adds_the_line_sets_the_hash_then_in_sync(tmp_path: Path):
    synth = build_edits(tmp_path, [LINK, LINE, PASSWORD])
    rootfs = synth.rootfs("app")
    real = render("--all", *synth.options())
    assert real.code == 2, real.err
    assert os.readlink(rootfs / WANTS) == TARGET
    assert (rootfs / "etc/securetty").read_text() == SECURETTY + "pts/0\n"
    assert (rootfs / "etc/shadow").read_text() == SHADOW.replace("root:*:", f"root:{ROOT_HASH}:")
    st = (rootfs / "etc/shadow").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 0, 42)  # as it was
    again = render("--all", *synth.options())
    assert again.code == 0 and "in sync (1 service(s), 4 file(s))" in again.out, again.out


def test_noop_diff_shows_the_link_and_the_line_and_never_the_hash(tmp_path: Path):
    synth = build_edits(tmp_path, [LINK, LINE, PASSWORD])
    before = tree_hash(synth.base)
    noop = render("--noop", "--diff", "--all", *synth.options())
    assert tree_hash(synth.base) == before
    assert noop.code == 2, noop.err
    assert f"\n+link -> {TARGET}\n" in noop.out
    assert " console\n tty1\n+pts/0\n" in noop.out  # only the added line, the rest as context
    assert "# password of root changed (not shown)\n" in noop.out
    assert "svc:!" not in noop.out and ROOT_HASH not in noop.out + noop.err
    assert "(new link)" in noop.out


def test_a_wrong_link_is_replaced_by_rename_never_followed(tmp_path: Path):
    synth = build_edits(tmp_path, [LINK])
    rootfs = synth.rootfs("app")
    (rootfs / WANTS).parent.mkdir(parents=True)
    (rootfs / WANTS).symlink_to("/etc/passwd")  # the host's, were it followed from outside
    passwd = (rootfs / "etc/passwd").read_bytes()
    result = render("--diff", "--all", *synth.options())
    assert result.code == 2, result.err
    assert "-link -> /etc/passwd\n+link -> " + TARGET in result.out
    assert os.readlink(rootfs / WANTS) == TARGET
    assert (rootfs / "etc/passwd").read_bytes() == passwd
    assert temp_files(synth.base) == []


def test_a_symlinked_wants_directory_cannot_lead_out_of_the_rootfs(tmp_path: Path):
    synth = build_edits(tmp_path / "t", [LINK])
    outside = tmp_path / "outside"
    outside.mkdir()
    system = synth.rootfs("app") / "etc/systemd/system"
    system.mkdir(parents=True)
    (system / "multi-user.target.wants").symlink_to(outside)  # absolute: inside the rootfs
    result = render("--all", *synth.options())
    assert result.code == 2, result.err
    assert list(outside.iterdir()) == []
    inside = synth.rootfs("app") / str(outside).lstrip("/") / "systemd-networkd.service"
    assert os.readlink(inside) == TARGET


@pytest.mark.parametrize("noop", [True, False])
def test_a_regular_file_where_the_link_goes_is_refused(tmp_path: Path, noop: bool):
    synth = build_edits(tmp_path, [LINK])
    (synth.rootfs("app") / WANTS).parent.mkdir(parents=True)
    (synth.rootfs("app") / WANTS).write_text("[Unit]\n")
    before = tree_hash(synth.rootfs("app"))
    result = render(*(["--noop"] if noop else []), "--all", *synth.options())
    assert result.code == 4
    assert result.err.endswith("destination is a regular file, not a symlink; a link entry "
                               "replaces only a symlink\n"), result.err
    assert tree_hash(synth.rootfs("app")) == before


def test_a_line_already_there_changes_nothing_and_owner_and_mode_are_kept(tmp_path: Path):
    synth = build_edits(tmp_path, [LINE], securetty="console\npts/0\ntty1")  # no final newline
    path = synth.rootfs("app") / "etc/securetty"
    os.chown(path, 163, 163)  # the container's svc user: a real second owner
    path.chmod(0o600)
    result = render("--all", *synth.options())
    assert result.code == 2 and "securetty" not in result.out, result.out  # app.conf only
    assert path.read_text() == "console\npts/0\ntty1"
    path.write_text("console")  # the package's edit: pts/0 gone, no final newline
    result = render("--diff", "--all", *synth.options())
    assert result.code == 2, result.err
    assert path.read_text() == "console\npts/0\n"
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (163, 163, 0o600)
    assert "edited outside render" not in result.out or "securetty" in result.out


@pytest.mark.parametrize("noop", [True, False])
def test_a_line_in_a_missing_file_fails_as_puppets_file_line(tmp_path: Path, noop: bool):
    synth = build_edits(tmp_path, [LINE], securetty=None)
    result = render(*(["--noop"] if noop else []), "--all", *synth.options())
    assert result.code == 4
    assert result.err.endswith("etc/securetty: does not exist: a line entry edits a file, it "
                               "does not create one\n"), result.err
    assert not (synth.rootfs("app") / "etc/app/app.conf").exists()  # the service wrote nothing


def test_a_value_that_is_not_a_crypt_hash_is_refused_naming_the_key(tmp_path: Path):
    synth = build_edits(tmp_path, [PASSWORD],
                        data={"app::root::password_hash": "plain-S3cret-typed-in"})
    result = render("--noop", "--all", *synth.options())
    assert result.code == 4
    lines = result.err.splitlines()
    assert len(lines) == 1 and "hiera key 'app::root::password_hash' is not a crypt hash" \
        in lines[0], result.err
    assert "plain-S3cret" not in result.out + result.err


def test_a_shadow_without_the_account_fails(tmp_path: Path):
    synth = build_edits(tmp_path, [PASSWORD], shadow="svc:!:19000::::::\n")
    result = render("--all", *synth.options())
    assert result.code == 4
    assert result.err.endswith("etc/shadow: has no entry for 'root': its password cannot be "
                               "set\n"), result.err


def test_only_roots_second_field_changes_and_no_hash_is_kept_in_state(tmp_path: Path):
    shadow = "svc:!:19000::::::\nroot:$y$j9T$old.old.old$ABCDEFGHIJKL:19001:0:99999:7:::\n"
    synth = build_edits(tmp_path, [PASSWORD], shadow=shadow)
    assert render("--all", *synth.options()).code == 2
    path = synth.rootfs("app") / "etc/shadow"
    assert path.read_text() == shadow.replace("$y$j9T$old.old.old$ABCDEFGHIJKL", ROOT_HASH)
    rotated = "$y$j9T$n3w.n3w.n3w$" + "Z" * 43
    synth.set_data({"lookup_options": {"^.*::password_hash$": {"convert_to": "Sensitive"}},
                    "app::root::password_hash": rotated})
    result = render("--diff", "--format", "json", "--all", *synth.options())
    assert result.code == 2, result.err
    assert rotated in path.read_text()
    state = b"".join(p.read_bytes() for p in synth.state.rglob("*") if p.is_file())
    for value in (ROOT_HASH, rotated, "old.old.old"):
        assert value.encode() not in state
        assert value not in result.out + result.err
    assert "password of root changed" in result.out


def test_private_users_link_and_edits_get_ids_inside_the_range(tmp_path: Path):
    synth = build_edits(tmp_path, [LINK, LINE, PASSWORD])
    rootfs = synth.rootfs("app")
    base = 327680
    for path in (rootfs, *rootfs.rglob("*")):
        st = path.lstat()
        os.lchown(path, base + st.st_uid, base + st.st_gid)  # as nspawn --private-users shifts
    result = render("--all", *synth.options())
    assert result.code == 2, result.err
    link = (rootfs / WANTS).lstat()
    assert (link.st_uid, link.st_gid) == (base, base)
    shadow = (rootfs / "etc/shadow").stat()
    assert (shadow.st_uid, shadow.st_gid, shadow.st_mode & 0o777) == (base, base + 42, 0o640)
    assert render("--all", *synth.options()).code == 0


FULL_DISK = textwrap.dedent("""
    import shutil, subprocess, sys
    sys.path[:0] = [sys.argv[2] + "/tests", sys.argv[2]]
    from pathlib import Path
    from synth import LINE, build_edits
    from conftest import render
    synth = build_edits(Path(sys.argv[1]), [LINE], securetty="console\\n" * 2000)  # 16 KiB
    shutil.copytree(synth.machines, synth.base / "saved", symlinks=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "render-edits-full",
                    str(synth.machines)], check=True)  # the rootfs only: the state dir has room
    shutil.copytree(synth.base / "saved", synth.machines, symlinks=True, dirs_exist_ok=True)
    securetty = synth.rootfs("app") / "etc/securetty"
    try:
        with open(synth.machines / "filler", "wb") as out:
            while True:
                out.write(b"x" * 512)
                out.flush()
    except OSError:
        pass
    result = render("--all", *synth.options())
    print(result.code, repr(result.err), securetty.read_text() == "console\\n" * 2000)
""")


@pytest.mark.slow
def test_a_full_disk_leaves_the_edited_file_as_it_was(tmp_path: Path):
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           "-c", FULL_DISK, str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, err, intact = done.stdout.split(" ", 1)[0], done.stdout, done.stdout.split()[-1]
    assert code == "4" and "No space left on device" in err and intact == "True", done.stdout


def test_a_failed_restart_puts_the_link_line_and_hash_back(tmp_path: Path, systemctl):
    restart = {"restart": "unit:app.service"}
    synth = build_edits(tmp_path, [{**LINK, **restart}, {**LINE, **restart},
                                   {**PASSWORD, **restart}])
    rootfs = synth.rootfs("app")
    before = tree_hash(rootfs)
    fake = systemctl(fail="app.service")
    result = render(*fake.options, "--all", *synth.options(restart=True))
    assert result.code == 4, result.out + result.err
    assert "rolled back 4 file(s) written by this run" in result.err, result.err
    def files(tree: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {path: entry for path, entry in tree.items() if entry[0] != "other"}  # not dirs

    assert files(tree_hash(rootfs)) == files(before)  # no link; securetty, shadow as they were
    assert ROOT_HASH not in result.out + result.err


def test_rollback_restores_the_line_and_leaves_shadow_as_it_is(tmp_path: Path):
    synth = build_edits(tmp_path, [LINE, PASSWORD])
    assert render("--all", *synth.options()).code == 2
    rollback = render("--rollback", "app", *synth.options())
    assert rollback.code == 2, rollback.out + rollback.err
    rootfs = synth.rootfs("app")
    assert (rootfs / "etc/securetty").read_text() == SECURETTY
    assert ROOT_HASH in (rootfs / "etc/shadow").read_text()  # no copy of shadow was kept


def test_a_symlinked_securetty_is_edited_only_with_follow_symlink(tmp_path: Path):
    synth = build_edits(tmp_path, [{**LINE, "follow_symlink": True}], securetty=None)
    etc = synth.rootfs("app") / "etc"
    (etc / "securetty.d").mkdir()
    (etc / "securetty.d/list").write_text("console\n")
    (etc / "securetty").symlink_to("/etc/securetty.d/list")  # inside the rootfs
    assert render("--all", *synth.options()).code == 2
    assert (etc / "securetty.d/list").read_text() == "console\npts/0\n"
    assert os.readlink(etc / "securetty") == "/etc/securetty.d/list"


def test_edit_entries_refuse_a_template_s_keys(tmp_path: Path):
    synth = build_edits(tmp_path, [{**LINE, "owner": "svc"}])
    result = render("--noop", "--all", *synth.options())
    assert result.code == 4
    assert result.err.endswith("key(s) not allowed in a line entry (it keeps the owner and mode "
                               "of what is there): owner\n"), result.err
