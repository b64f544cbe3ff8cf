"""The Debian package, built with `make deb` and installed with dpkg into a throwaway root.

The root is a minimal chroot (an empty dpkg database, /bin/sh with its libraries, /dev/null), so
dpkg runs the package's real maintainer scripts chrooted there: nothing reaches the machine's own
/, /etc, /usr or dpkg database. The installed /usr/bin/render then runs on the host's Debian
python3 and Debian's python3-jinja2, python3-yaml and python3-oslo.config (TEST_DEBS), with the
root's dist-packages first on the path, and must write the very files the repo's render writes.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, Tree, provision, render, stand_in_probes

DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's python3, not a pyenv or venv one
NODE = "controller1.example.com"
SYSTEMCTL = str(REPO / "contrib" / "demo-systemctl")

pytestmark = pytest.mark.slow


def shared_libraries(binary: str) -> list[Path]:
    """The libraries ``binary`` loads, as ldd lists them (the loader included)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [Path(word) for line in out.splitlines() for word in line.split()
            if word.startswith("/")]


def throwaway_root(root: Path) -> Path:
    """An empty dpkg database and what the maintainer scripts need to run chrooted."""
    for name in ("info", "updates", "triggers"):
        (root / "var/lib/dpkg" / name).mkdir(parents=True)
    for name in ("status", "available"):
        (root / "var/lib/dpkg" / name).touch()
    shell = "/bin/dash"
    (root / "bin").mkdir()
    shutil.copy(shell, root / "bin/sh")
    for library in shared_libraries(shell):
        target = root / library.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(library.resolve(), target)
    (root / "dev").mkdir()
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "tmp").mkdir(mode=0o1777)
    return root


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    subprocess.run(["make", "-s", "deb-package", f"DEB_OUT={out}"], cwd=REPO, check=True,
                   capture_output=True, timeout=600)
    debs = sorted(out.glob("render_*_all.deb"))
    assert len(debs) == 1, sorted(p.name for p in out.iterdir())
    assert not (out / "src").exists(), "make deb left its build tree behind"
    assert not list(REPO.parent.glob("render_*")), "dpkg-buildpackage wrote next to the repo"
    assert not (REPO / "debian/generated").exists() and not (REPO / ".pybuild").exists()
    return debs[0]


@pytest.fixture(scope="module")
def installed(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = throwaway_root(tmp_path_factory.mktemp("root"))
    done = subprocess.run(["dpkg", f"--root={root}", "--force-depends", "-i", str(package)],
                          capture_output=True, text=True, env={**os.environ, "PATH": DEBIAN_PATH})
    assert done.returncode == 0, done.stderr
    return root


def installed_render(root: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """DIR/usr/bin/render on the host's Debian python3, the root's dist-packages first. An empty
    RENDER_CONFIG keeps the machine's /etc/render/render.conf (if any) out of the run."""
    empty = tmp / "empty.conf"
    empty.write_text("")
    env = {"PATH": DEBIAN_PATH, "LANG": "C.UTF-8", "RENDER_CONFIG": str(empty),
           "PYTHONPATH": str(root / "usr/lib/python3/dist-packages"), "PYTHONNOUSERSITE": "1"}
    return subprocess.run(["/usr/bin/python3", str(root / "usr/bin/render"), *args],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=120)


def test_lintian(package: Path) -> None:
    """No lintian error (make test runs the same check before pytest); overrides stay used."""
    changes = sorted(package.parent.glob("render_*.changes"))
    done = subprocess.run(["lintian", "--fail-on", "error", "--show-overrides", *map(str, changes)],
                          capture_output=True, text=True, env={**os.environ, "PATH": DEBIAN_PATH})
    assert done.returncode == 0, done.stdout + done.stderr
    tags = [line for line in done.stdout.splitlines() if line[:2] in ("E:", "W:", "O:")]
    assert not [tag for tag in tags if "unused-override" in tag or tag.startswith("E:")], tags


def test_layout(installed: Path) -> None:
    """Every agreed path is there, the config file is a conffile, dpkg knows the package."""
    for path in ("usr/bin/render", "usr/share/render/services/_lib",
                 "usr/share/render/services/keystone/service.yaml",
                 "etc/render/render.conf", "usr/share/bash-completion/completions/render",
                 "usr/share/man/man1/render.1.gz", "usr/share/doc/render/copyright",
                 "usr/share/doc/render/README.md",
                 "usr/share/puppet/modules/render/manifests/service.pp"):
        assert (installed / path).exists(), path
    for unit in (REPO / "contrib/systemd").iterdir():
        assert (installed / "lib/systemd/system" / unit.name).read_bytes() == unit.read_bytes()
    shipped = sorted(p.relative_to(REPO / "service_templates").as_posix()
                     for p in (REPO / "service_templates").rglob("*") if p.is_file()
                     and "__pycache__" not in p.parts)
    got = sorted(p.relative_to(installed / "usr/share/render/services").as_posix()
                 for p in (installed / "usr/share/render/services").rglob("*") if p.is_file())
    assert got == shipped
    assert not (installed / "usr/lib/python3/dist-packages/renderer/service_templates").exists()
    conffiles = (installed / "var/lib/dpkg/info/render.conffiles").read_text().split()
    assert conffiles == ["/etc/render/render.conf"]
    status = (installed / "var/lib/dpkg/status").read_text()
    assert "Package: render\nStatus: install ok installed" in status
    conf = (installed / "etc/render/render.conf").read_text()
    for line in ("[render]", "machines-dir = /var/lib/machines", "host-root = /",
                 "state-dir = /var/lib/render", "fact-file = /etc/facter/facts.d/render.json",
                 "metrics-file = /var/lib/prometheus/node-exporter/render.prom"):
        assert line in conf.splitlines(), line


def test_renders_the_sample_as_the_repo_does(installed: Path, tmp_path: Path) -> None:
    """The installed render against the sample writes the same files (content, mode, owner) as
    the repo's; a second run, without --templates, finds the shipped templates and is in sync."""
    trees = {}
    for name in ("repo", "deb"):
        tree = Tree(tmp_path / name)
        shutil.copytree(REPO / "hieradata", tree.hieradata)
        provision(REPO / "service_templates", tree.machines, tree.hieradata)
        stand_in_probes(tree.hieradata)
        tree.host.mkdir()
        trees[name] = tree
    roots = ("--machines-dir", "--host-root", "--state-dir")

    def options(tree: Tree) -> list[str]:
        values = (tree.machines, tree.host, tree.state)
        return ["--hieradata", str(tree.hieradata), "--node", NODE, "--systemctl", SYSTEMCTL,
                *[f"{option}={value}" for option, value in zip(roots, values)]]

    repo = render(*options(trees["repo"]), "--templates", str(REPO / "service_templates"),
                  "--all")
    assert repo.code == 2, repo.err
    shipped = installed / "usr/share/render/services"
    deb = installed_render(installed, *options(trees["deb"]), "--templates", str(shipped),
                           "--all", tmp=tmp_path)
    assert deb.returncode == 2, deb.stderr
    def same(out: str, tree: str) -> list[str]:
        """Restart lines carry their duration and come as each restart ends."""
        return sorted(re.sub(r" after \d+\.\d s$", " after N s",
                             out.replace(str(tmp_path / tree), "T"), flags=re.M).splitlines())
    assert same(deb.stdout, "deb") == same(repo.out, "repo")

    def files(tree: Tree) -> dict[str, tuple[str, int, int, int]]:
        return {path.replace(str(tree.base), "T"): value
                for path, value in tree.snapshot().items()}
    assert files(trees["deb"]) == files(trees["repo"])
    assert len(files(trees["deb"])) > 50

    again = installed_render(installed, *options(trees["deb"]), "--noop", "--all", tmp=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_runs_from_the_root_not_the_repo(installed: Path, tmp_path: Path) -> None:
    """The modules come from the throwaway root, on Debian's python3."""
    done = installed_render(installed, "--version", tmp=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("render "), done.stderr
    check = subprocess.run(
        ["/usr/bin/python3", "-c", "import renderer, jinja2, yaml; print(renderer.__file__, "
         "jinja2.__file__, yaml.__file__)"], capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(installed / "usr/lib/python3/dist-packages")})
    module, jinja, yml = check.stdout.split()
    assert module.startswith(str(installed)), module
    assert jinja.startswith("/usr/lib/python3/dist-packages/") and \
        yml.startswith("/usr/lib/python3/dist-packages/"), check.stdout


def test_man_page(installed: Path) -> None:
    """man reads the page without a warning; it lists every option of the three parsers."""
    page = installed / "usr/share/man/man1/render.1.gz"
    done = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                          text=True, env={"PATH": DEBIAN_PATH, "MANWIDTH": "100",
                                          "LANG": "C.UTF-8"})
    assert done.returncode == 0 and done.stderr == "", done.stderr
    saved = dict(os.environ)  # importing parsers drops RENDER_*: conftest's isolation too
    try:
        import parsers
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = done.stdout.replace("\u2010", "-")
    for command in parsers.commands():
        for action in parsers.options(command.parser):
            for name in action.option_strings:
                assert name in text, name
    for heading in ("SYNOPSIS", "render lookup", "render show", "EXIT STATUS", "FILES"):
        assert heading in text
    roff = gzip.decompress(page.read_bytes()).decode()
    assert roff.startswith(".TH RENDER 1 ")


def complete(root: Path, line: str, tmp: Path, path: str = DEBIAN_PATH) -> list[str]:
    """What bash-completion offers for ``line`` (its last word being completed)."""
    script = (f"source /usr/share/bash-completion/bash_completion\n"
              f"source {root}/usr/share/bash-completion/completions/render\n"
              f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
              f"read -ra COMP_WORDS <<< \"$COMP_LINE\"\n"
              f"[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n"
              f"COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n"
              f"_render\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp,
                          env={"PATH": path})
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completion(installed: Path, tmp_path: Path) -> None:
    """Options and their choices per command; subcommand words at the first position."""
    assert complete(installed, "render --for", tmp_path) == ["--format"]
    assert complete(installed, "render --format ", tmp_path) == ["text", "json"]
    assert complete(installed, "render show x --format ", tmp_path) == ["text", "json", "yaml"]
    assert "--show-secrets" in complete(installed, "render show --", tmp_path)
    assert "--show-secrets" not in complete(installed, "render --", tmp_path)
    assert complete(installed, "render lookup --merge d", tmp_path) == ["deep"]
    assert {"lookup", "show", "bundle", "preview", "restart"} <= \
        set(complete(installed, "render ", tmp_path))
    (tmp_path / "sub").mkdir()
    assert complete(installed, "render --templates s", tmp_path) == ["sub"]
    assert complete(installed, "render --facts s", tmp_path) == ["sub"]  # and its files
    (tmp_path / "sub/facts.yaml").touch()
    assert complete(installed, "render --hieradata sub/", tmp_path) == []
    assert complete(installed, "render --facts sub/", tmp_path) == ["sub/facts.yaml"]


def test_bash_completion_services(installed: Path, tmp_path: Path) -> None:
    """SERVICE words are the first column of ``render --list``, asked with the --templates,
    --hieradata and --config already typed (a stand-in render answers here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    stub = bin_dir / "render"
    stub.write_text(f'#!/bin/sh\necho "$@" > {asked}\n'
                    "printf 'keystone\\tkeystone\\nneutron-agent\\t-\\nnova\\tnova\\n'\n")
    stub.chmod(0o755)
    path = f"{bin_dir}:{DEBIAN_PATH}"
    assert complete(installed, "render show n", tmp_path, path) == ["neutron-agent", "nova"]
    assert asked.read_text() == "--list\n"
    words = complete(installed, "render --templates /t --noop k", tmp_path, path)
    assert words == ["keystone"]
    assert asked.read_text() == "--list --templates /t\n"
    assert complete(installed, "render --rollback ", tmp_path, path) == \
        ["keystone", "neutron-agent", "nova"]
    assert set(complete(installed, "render ", tmp_path, path)) == \
        {"keystone", "neutron-agent", "nova", "lookup", "show", "bundle", "preview", "restart"}
    assert complete(installed, "render lookup ", tmp_path, path) == []


def test_maintainer_scripts_store_and_remove_the_compiled_patterns(package: Path,
                                                                   tmp_path: Path) -> None:
    """postinst stores renderer.regexcache's file beside the .pyc files py3compile writes, and
    the installed render seeds from it; prerm removes it, so removing the package leaves no
    directory behind. Here the root's /usr is an overlay over the machine's (in a private mount
    namespace), so the chrooted scripts find Debian's python3 and py3compile."""
    root = throwaway_root(tmp_path / "root")
    upper, work = tmp_path / "upper", tmp_path / "work"
    for path in (root / "usr", upper, work):
        path.mkdir()
    package_dir = root / "usr/lib/python3/dist-packages/renderer"
    script = f"""set -e
        mount -t overlay overlay -o lowerdir=/usr,upperdir={upper},workdir={work} {root}/usr
        dpkg --root={root} --force-depends -i {package} >/dev/null 2>&1
        ls {package_dir}/__pycache__
        PYTHONPATH={root}/usr/lib/python3/dist-packages python3 -c \
            'import renderer.regexcache as r; print("seeded", r.seed())'
        dpkg --root={root} -r render >/dev/null 2>&1
        test ! -e {package_dir} && echo removed
    """
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": DEBIAN_PATH, "LANG": "C.UTF-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.split()
    assert "regex.cpython-311.marshal" in lines and "render.cpython-311.pyc" not in lines
    assert any(name.endswith(".cpython-311.pyc") for name in lines)
    seeded = int(lines[lines.index("seeded") + 1])
    assert seeded > 50, done.stdout
    assert lines[-1] == "removed"
