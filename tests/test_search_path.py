"""The template search path: a site folder (in tmp_path, as /etc/render/services would be)
replaces the shipped folder of the same service whole, adds the services only it has, and
overrides single ``_lib`` files while the shipped others are still found; for ``render``,
``render --list``, ``render show`` and ``render lookup --service``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Tree, render

from renderer.options import SHIPPED_TEMPLATES, SITE_TEMPLATES, default_templates, template_path

MEMCACHED = Path("memcached/etc/memcached.conf")
MOTD = Path("memcached/etc/motd")


def options(tree: Tree, *templates: str) -> list[str]:
    """The tree's options with ``--templates`` given as ``templates``."""
    given = tree.options()
    at = given.index("--templates")
    del given[at:at + 2]
    return [*given, *(word for path in templates for word in ("--templates", path)),
            "--no-restart"]


def site_memcached(site: Path, template: str = "-m 64\n", files: bool = True) -> None:
    folder = site / "memcached"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text("machine: memcached\nfiles:\n"
                                         "  - template: memcached.conf.j2\n"
                                         "    dest: /etc/memcached.conf\n")
    if files:
        (folder / "memcached.conf.j2").write_text(template)


def site_motd(site: Path) -> None:
    folder = site / "motd"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text("machine: memcached\nfiles:\n"
                                         "  - template: motd.j2\n    dest: /etc/motd\n")
    (folder / "motd.j2").write_text("welcome to {{ machine }}\n")


def test_site_folder_overrides_the_shipped_one_whole(tree: Tree, tmp_path: Path):
    site = tmp_path / "site"
    site_memcached(site)
    result = render("memcached", *options(tree, str(site), str(tree.templates)))
    assert result.code == 2, result.err
    assert (tree.machines / MEMCACHED).read_text() == "-m 64\n"
    # whole: the site's definition has no container include, so no .nspawn is written
    assert not (tree.host / "etc/systemd/nspawn/memcached.nspawn").exists()
    # and the shipped order: the shipped folder wins when it comes first
    result = render("memcached", *options(tree, f"{tree.templates}:{site}"))
    assert result.code == 2, result.err
    assert (tree.machines / MEMCACHED).read_text().startswith("# Managed by render")


def test_site_folder_never_borrows_a_shipped_template(tree: Tree, tmp_path: Path):
    site = tmp_path / "site"
    site_memcached(site, files=False)
    result = render("memcached", *options(tree, str(site), str(tree.templates)))
    assert result.code == 4
    assert f"template 'memcached.conf.j2' not found in {site / 'memcached'}" in result.err
    assert not (tree.machines / MEMCACHED).exists()


def test_site_service_extends_the_shipped_ones(tree: Tree, tmp_path: Path):
    site = tmp_path / "site"
    site_motd(site)
    opts = options(tree, str(site), str(tree.templates))
    result = render("--all", *opts)
    assert result.code == 2, result.err
    assert (tree.machines / MOTD).read_text() == "welcome to memcached\n"
    assert (tree.machines / "keystone/etc/keystone/keystone.conf").exists()
    listed = render("--list", *opts)
    assert listed.code == 0, listed.err
    names = [line.split("\t")[0] for line in listed.out.splitlines()]
    assert "motd" in names and "keystone" in names and names == sorted(names)


def test_site_lib_file_overrides_the_shipped_one_and_others_are_still_found(
        tree: Tree, tmp_path: Path):
    site = tmp_path / "site"
    (site / "_lib").mkdir(parents=True)
    (site / "_lib/container.nspawn.j2").write_text("[Exec]\nBoot=yes\n# site {{ machine }}\n")
    result = render("memcached", *options(tree, str(site), str(tree.templates)))
    assert result.code == 2, result.err
    nspawn = tree.host / "etc/systemd/nspawn/memcached.nspawn"
    assert nspawn.read_text() == "[Exec]\nBoot=yes\n# site memcached\n"
    host0 = tree.machines / "memcached/etc/systemd/network/80-container-host0.network"
    assert "[Match]" in host0.read_text()  # the shipped _lib template, still found

    def shown(*path: Path) -> str:
        result = render("show", "memcached", "--hieradata", str(tree.hieradata),
                        "--node", "controller1.example.com",
                        *(w for p in path for w in ("--templates", str(p))))
        assert result.code == 0, result.err
        return result.out

    assert "# site memcached" in shown(site, tree.templates)
    assert "# site memcached" not in shown(tree.templates, site)  # the earlier one wins
    assert "80-container-host0.network" in shown(site, tree.templates)
    # an include is looked up the same way: a site container.yaml replaces the shipped one
    (site / "_lib/container.yaml").write_text("files:\n  - template: container.nspawn.j2\n"
                                              "    root: host\n"
                                              "    dest: /etc/systemd/nspawn/{machine}.nspawn\n")
    assert "80-container-host0.network" not in shown(site, tree.templates)
    assert "80-container-host0.network" in shown(tree.templates, site)


def test_search_path_from_the_environment(tree: Tree, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch):
    site = tmp_path / "site"
    site_memcached(site)
    monkeypatch.setenv("RENDER_TEMPLATES", f"{site}:{tree.templates}")
    given = tree.options()
    at = given.index("--templates")
    del given[at:at + 2]
    result = render("--no-restart", "memcached", *given)
    assert result.code == 2, result.err
    assert (tree.machines / MEMCACHED).read_text() == "-m 64\n"


def test_show_and_lookup_follow_the_path(tree: Tree, tmp_path: Path):
    site = tmp_path / "site"
    site_memcached(site, template="-m {{ lookup('memcached::memory_mb') }}\n")
    site_motd(site)
    path = f"{site}:{tree.templates}"
    shown = render("show", "memcached", "--hieradata", str(tree.hieradata), "--templates", path,
                   "--node", "controller1.example.com")
    assert shown.code == 0, shown.err
    assert "-m 1024" in shown.out and "nspawn" not in shown.out
    assert render("show", "motd", "--hieradata", str(tree.hieradata), "--templates",
                  path).code == 0
    looked = render("lookup", "--hieradata", str(tree.hieradata), "--templates", path,
                    "--service", "motd", "openstack::memcached::port")
    assert (looked.code, looked.out.strip()) == (0, "11211"), looked.err
    shipped_only = render("lookup", "--hieradata", str(tree.hieradata), "--templates",
                          str(tree.templates), "--service", "motd", "openstack::memcached::port")
    assert shipped_only.code != 0 and "unknown service 'motd'" in shipped_only.err


def test_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert template_path(["/a", "/b"]) == (Path("/a"), Path("/b"))
    expected = [SHIPPED_TEMPLATES if SHIPPED_TEMPLATES.is_dir() else default_templates()]
    if SITE_TEMPLATES.is_dir():
        expected.insert(0, SITE_TEMPLATES)
    assert template_path(None) == tuple(expected)
    site, shipped = tmp_path / "etc", tmp_path / "usr"
    monkeypatch.setattr("renderer.options.SITE_TEMPLATES", site)
    monkeypatch.setattr("renderer.options.SHIPPED_TEMPLATES", shipped)
    assert template_path([]) == (default_templates(),)
    site.mkdir()
    shipped.mkdir()
    assert template_path([]) == (site, shipped)


def test_a_missing_directory_of_the_path_is_skipped(tree: Tree, tmp_path: Path):
    """The package's config names /etc/render/services before the site has made it."""
    absent = tmp_path / "no-site-yet"
    result = render("--all", *options(tree, f"{absent}:{tree.templates}"))
    assert result.code == 2, result.err
    listed = render("--list", *options(tree, str(absent), str(tree.templates)))
    assert listed.code == 0 and "keystone\tkeystone\n" in listed.out
    alone = render("--all", *options(tree, str(absent)))
    assert alone.code == 4
    assert alone.err == f"render: {absent}: cannot list service templates: No such file or " \
                        "directory\n"
    both = render("--all", *options(tree, str(absent), str(tmp_path / "also-absent")))
    assert both.code == 4 and str(absent) in both.err
