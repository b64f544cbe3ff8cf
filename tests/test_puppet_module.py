"""The Puppet module (class ``render``, define ``render::service``, type ``render_sync``), applied
by real ``puppet apply`` (Debian's puppet) with every Puppet directory inside the test's."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, puppet_dirs

pytestmark = [pytest.mark.puppet, pytest.mark.slow]
RENDER = Path(sys.executable).with_name("render")
CERTNAME = "controller1.example.com"  # the sample's node: render must get it from Puppet


def apply(manifest: str, work: Path, *extra: str) -> subprocess.CompletedProcess:
    puppet = shutil.which("puppet")
    assert puppet, "Debian's puppet is not installed: run the suite through 'make test'"
    assert RENDER.exists(), f"{RENDER} missing: run the suite through 'make test'"
    work.mkdir(parents=True, exist_ok=True)
    (work / "hiera.yaml").write_text("version: 5\nhierarchy: []\n")
    command = [puppet, "apply", "--detailed-exitcodes", "--color=false",
               *puppet_dirs(work), f"--certname={CERTNAME}",
               f"--hiera_config={work / 'hiera.yaml'}",
               f"--modulepath={REPO / 'contrib' / 'puppet'}", *extra, "-e", manifest]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def summary(work: Path) -> dict:
    """Puppet's last_run_summary.yaml (plain YAML, unlike the report's Ruby-tagged one; Puppet 7
    keeps it in $publicdir)."""
    return yaml.safe_load((work / "publicdir" / "last_run_summary.yaml").read_text())


def roots(tree: Tree) -> list[str]:
    """The tree's options without --node: the define passes Puppet's certname."""
    options = tree.options()
    at = options.index("--node")
    return [*options[:at], *options[at + 2:], "--no-restart"]


def manifest(tree: Tree, service: str = "keystone", **params: str) -> str:
    options = ", ".join(f"'{o}'" for o in roots(tree))
    extra = "".join(f", {k} => {v}" for k, v in params.items())
    return (f"render::service {{ '{service}': command => '{RENDER}', options => [{options}], "
            f"facts_dir => '{tree.state.parent / 'facts'}'{extra} }}")


def test_puppet_apply_runs_render_only_when_out_of_sync(tree: Tree, tmp_path: Path):
    first = apply(manifest(tree), tmp_path / "puppet")
    assert first.returncode == 2, first.stdout + first.stderr
    assert (tree.machines / "keystone/etc/keystone/keystone.conf").exists()
    assert "+memcache_servers=" in first.stdout  # the diff is in Puppet's log
    assert "Kst0ne-db-S3cret" not in first.stdout + first.stderr

    second = apply(manifest(tree), tmp_path / "puppet")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Render_sync[keystone]" not in second.stdout

    conf = tree.machines / "keystone/etc/keystone/keystone.conf"
    conf.write_text(conf.read_text().replace("caching=True", "caching=False"))
    third = apply(manifest(tree), tmp_path / "puppet")
    assert third.returncode == 2
    assert "caching=True" in conf.read_text()


def test_puppet_apply_passes_certname_environment_and_the_compiled_facts(tree: Tree,
                                                                        tmp_path: Path):
    """The facts file is $facts as Puppet compiled with (clientcert = the certname), 0600 in a
    0700 directory, and rewritten by a run only when facts differ (no change event)."""
    work = tmp_path / "puppet"
    (work / "codedir" / "environments" / "staging").mkdir(parents=True)
    result = apply(manifest(tree), work, "--environment=staging", "--debug")
    assert result.returncode == 2, result.stdout + result.stderr
    facts_file = tree.state.parent / "facts" / f"{CERTNAME}.json"
    facts = json.loads(facts_file.read_text())
    assert facts["clientcert"] == CERTNAME
    assert facts["clientnoop"] is False and "os" in facts and "domain" in facts
    assert stat.S_IMODE(facts_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(facts_file.parent.stat().st_mode) == 0o700
    call = next(line for line in result.stdout.splitlines() if "running " in line)
    assert f"--node {CERTNAME} --var environment=staging" in call
    assert f"--facts {facts_file}" in call
    assert call.endswith("--noop --quiet keystone (timeout 210.0 s)")  # 60 + 60 + 1 * (60 + 30)


def test_puppet_define_takes_command_state_dir_and_timeouts_from_the_class(tree: Tree,
                                                                           tmp_path: Path):
    """With class render declared (package, file and timer left alone here), the define runs
    the class's command, writes facts under its state_dir, and its timeout follows the class's
    health_timeout and the units: 60 + 60 + 3 * (2 * 7 + 30) = 252."""
    klass = (f"class {{ 'render': manage_package => false, manage_config => false, "
             f"manage_timer => false, command => '{RENDER}', state_dir => '{tree.state}', "
             f"health_timeout => 7 }}")
    options = ", ".join(f"'{o}'" for o in roots(tree))
    define = f"render::service {{ 'keystone': units => 3, options => [{options}] }}"
    result = apply(f"{klass} {define}", tmp_path / "puppet", "--debug")
    assert result.returncode == 2, result.stdout + result.stderr
    call = next(line for line in result.stdout.splitlines() if "running " in line)
    assert f"running {RENDER} --node {CERTNAME}" in call
    assert call.endswith("(timeout 252.0 s)") and "--health-timeout" not in call
    assert (tree.state / "facts" / f"{CERTNAME}.json").is_file()


def test_puppet_apply_noop_reports_a_pending_change_and_writes_nothing(tree: Tree,
                                                                      tmp_path: Path):
    before = tree.snapshot(state=True)
    work = tmp_path / "puppet"
    result = apply(manifest(tree), work, "--noop", "--debug")
    assert result.returncode == 0, result.stdout + result.stderr  # Puppet: noop is no change
    call = next(line for line in result.stdout.splitlines() if "running " in line)
    assert "/render-facts-" in call and "--noop --diff keystone" in call
    assert "current_value 'changes_pending', should be 'in_sync' (noop)" in result.stdout
    assert "+memcache_servers=" in result.stdout  # what would change, masked
    assert "Kst0ne-db-S3cret" not in result.stdout + result.stderr
    report = summary(work)
    assert report["events"]["noop"] == 1 and report["resources"]["out_of_sync"] == 1
    assert report["resources"]["failed"] == 0
    assert tree.snapshot(state=True) == before
    assert not (tree.state.parent / "facts").exists()  # this check's facts were temporary

    apply(manifest(tree), work)
    again = apply(manifest(tree), work, "--noop")
    assert again.returncode == 0 and summary(work)["resources"]["out_of_sync"] == 0


@pytest.mark.parametrize("noop", [False, True], ids=["run", "noop"])
def test_puppet_apply_fails_the_resource_on_render_failure(tree: Tree, tmp_path: Path,
                                                           noop: bool):
    """A render failure fails the resource even under --noop, where an exec's `unless` would
    have read exit 4 as a pending change."""
    work = tmp_path / "puppet"
    result = apply(manifest(tree, "nosuch"), work, *(["--noop"] if noop else []))
    assert result.returncode in (4, 6), result.stdout + result.stderr
    assert "render nosuch failed (exit 64" in result.stderr or \
        "render nosuch failed (exit 4" in result.stderr, result.stderr
    assert "unknown service 'nosuch'" in result.stderr
    assert summary(work)["resources"]["failed"] == 1


def test_puppet_apply_fails_the_resource_when_render_outlives_the_timeout(tree: Tree,
                                                                          tmp_path: Path):
    slow = tmp_path / "slow-render"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    params = manifest(tree).replace(f"'{RENDER}'", f"'{slow}'")[:-2] + ", timeout => 1 }"
    result = apply(params, tmp_path / "puppet")
    assert result.returncode in (4, 6), result.stdout + result.stderr
    assert "render keystone: no result after 1.0 seconds" in result.stderr


def test_puppet_dirs_leave_puppet_no_directory_of_the_machine(tmp_path: Path):
    """Every setting naming a path points inside the test's directory, as Puppet resolves it
    with puppet_dirs(); the module path is set by each caller (--modulepath, --basemodulepath)."""
    puppet = shutil.which("puppet")
    assert puppet, "Debian's puppet is not installed: run the suite through 'make test'"
    done = subprocess.run([puppet, "config", "print", "all", *puppet_dirs(tmp_path),
                           f"--hiera_config={tmp_path / 'hiera.yaml'}"],
                          capture_output=True, text=True, timeout=120, check=True)
    outside = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition(" = ")
        if "://" in value:  # URLs: puppet:///plugins, https://forgeapi...
            continue
        paths = [p for p in value.split(":") if p.startswith("/")]  # also path lists
        if any(not p.startswith(f"{tmp_path}/") for p in paths):
            outside[name] = value
    assert set(outside) <= {"modulepath", "basemodulepath"}, outside


def test_puppet_class_writes_the_configuration_file_from_its_parameters(tmp_path: Path):
    """Keys are render's long options; undef parameters are left out; a second run is no
    change. (The package and the timer are the machine's: not managed here.)"""
    conf = tmp_path / "etc" / "render" / "render.conf"
    conf.parent.parent.mkdir()  # /etc exists; /etc/render is the class's when no package made it
    klass = (f"class {{ 'render': manage_package => false, manage_timer => false, "
             f"config_file => '{conf}', machines_dir => '/srv/machines', health_timeout => 45, "
             f"templates => ['/etc/render/services', '/usr/share/render/services'], "
             f"settings => {{ 'keep-versions' => 10, 'journal' => 'never' }} }}")
    work = tmp_path / "puppet"
    first = apply(klass, work)
    assert first.returncode == 2, first.stdout + first.stderr
    lines = [line for line in conf.read_text().splitlines() if line and line[0] != "#"]
    assert lines == ["[render]", "health-timeout = 45", "journal = never", "keep-versions = 10",
                     "machines-dir = /srv/machines",
                     "templates = /etc/render/services:/usr/share/render/services"]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    again = apply(klass, work)
    assert again.returncode == 0, again.stdout + again.stderr


def test_puppet_module_manifests_and_templates_parse(tmp_path: Path):
    puppet = shutil.which("puppet")
    assert puppet, "Debian's puppet is not installed: run the suite through 'make test'"
    module = REPO / "contrib" / "puppet" / "render"
    manifests = sorted(str(p) for p in (module / "manifests").glob("*.pp"))
    for command in (["parser", "validate", *manifests],
                    ["epp", "validate", *map(str, (module / "templates").glob("*.epp"))]):
        done = subprocess.run([puppet, *command, *puppet_dirs(tmp_path)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    metadata = json.loads((module / "metadata.json").read_text())
    assert metadata["name"] == "render-render" and metadata["dependencies"] == []
    assert {"operatingsystem": "Debian", "operatingsystemrelease": ["12"]} in \
        metadata["operatingsystem_support"]


def test_puppet_class_with_its_defaults_declares_package_config_timer(tmp_path: Path):
    """The default catalog, compiled for real but applied to nothing (a tag no resource has):
    the machine's package, /etc and systemd are neither read nor changed."""
    work = tmp_path / "puppet"
    result = apply("include render render::service { 'keystone': }", work,
                   "--tags=render_test_compile_only", "--write-catalog-summary")
    assert result.returncode == 0, result.stdout + result.stderr
    resources = (work / "vardir" / "state" / "resources.txt").read_text().split()
    assert resources == ["package[render]", "file[/etc/render]", "file[/etc/render/render.conf]",
                         "service[render-drift.timer]", "render_sync[keystone]"]
