"""Adding a service as the README's "Add a service" says: ``make new-service`` (its script,
contrib/new_service.py) into a scratch copy of the sample, a provisioned scratch tree, and a
first ``--noop`` that succeeds; and a service copied from glance with keys removed names every
missing key in one run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, render
from demo_machines import provision

SCRIPT = REPO / "contrib" / "new_service.py"


def sample(base: Path) -> Tree:
    """The sample's hieradata and service_templates, not provisioned yet."""
    tree = Tree(base)
    shutil.copytree(REPO / "hieradata", tree.hieradata)
    shutil.copytree(REPO / "service_templates", tree.templates)
    tree.host.mkdir(parents=True)
    return tree


def new_service(tree: Tree, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), name, "--templates", str(tree.templates),
                           "--hieradata", str(tree.hieradata)],
                          capture_output=True, text=True, timeout=30)


def files_under(*tops: Path) -> list[str]:
    return sorted(str(p) for top in tops for p in top.rglob("*"))


def test_new_service_renders_on_its_first_dry_run(tmp_path: Path):
    tree = sample(tmp_path)
    done = new_service(tree, "foo")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    definition = yaml.safe_load((tree.templates / "foo" / "service.yaml").read_text())
    assert definition["machine"] == "foo"
    assert {"include": "container"} in definition["files"]  # the shared container block
    assert (tree.hieradata / "data" / "services" / "foo.yaml").is_file()
    provision(tree.templates, tree.machines, tree.hieradata)
    first = render("--noop", "--diff", "foo", *tree.options())
    assert (first.code, first.err) == (2, ""), first.err
    assert "foo: would create " + str(tree.machines / "foo/etc/foo/foo.conf") in first.out
    assert "+debug=False\n+listen_port=8080\n" in first.out
    assert f"foo: would create {tree.host}/etc/systemd/nspawn/foo.nspawn (new file)" in first.out
    assert "foo: would restart foo.service in foo (files changed)" in first.out
    assert "foo: would restart systemd-nspawn@foo.service (files changed)" in first.out
    every = render("--noop", "--all", *tree.options())  # and the catalog is still whole
    assert (every.code, every.err) == (2, ""), every.err


@pytest.mark.parametrize("name, code, message", [
    ("glance", 73, "glance already exists"),
    ("Foo", 64, "invalid service name 'Foo'"),
    ("_lib", 64, "invalid service name '_lib'"),
    ("a/b", 64, "invalid service name 'a/b'"),
    ("foo\n", 64, "invalid service name 'foo\\n'"),
    ("lookup", 64, "'lookup' is a subcommand"),
])
def test_new_service_refuses_a_bad_or_taken_name(tmp_path: Path, name: str, code: int,
                                                 message: str):
    tree = sample(tmp_path)
    before = files_under(tree.templates, tree.hieradata)
    done = new_service(tree, name)
    assert done.returncode == code
    assert message in done.stderr and done.stdout == ""
    assert files_under(tree.templates, tree.hieradata) == before


def test_refuses_a_name_that_only_has_data(tmp_path: Path):
    tree = sample(tmp_path)
    (tree.hieradata / "data" / "services" / "foo.yaml").write_text("foo::x: 1\n")
    done = new_service(tree, "foo")
    assert done.returncode == 73 and "services/foo.yaml already exists" in done.stderr
    assert not (tree.templates / "foo").exists()


def test_make_new_service_without_a_name_says_how(tmp_path: Path):
    done = subprocess.run(["make", "-s", "-C", str(REPO), "new-service"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode != 0
    assert "usage: make new-service NAME=<service>" in done.stderr


def test_copied_service_names_every_missing_key_in_one_run(tmp_path: Path):
    """glance copied as glance2 (its keys renamed), with a few keys left out of its data: one
    run names each of them, at its template line, via the _lib macro that reads it."""
    tree = sample(tmp_path)
    shutil.copytree(tree.templates / "glance", tree.templates / "glance2")
    for name in ("service.yaml", "glance-api.conf.j2"):
        path = tree.templates / "glance2" / name
        path.write_text(path.read_text().replace("glance::", "glance2::")
                        .replace("('glance')", "('glance2')")
                        .replace("machine: glance", "machine: glance2"))
    data = {}
    for relpath in ("services/glance.yaml", "credentials.yaml"):
        loaded = yaml.safe_load((tree.hieradata / "data" / relpath).read_text())
        data.update({k.replace("glance::", "glance2::"): v for k, v in loaded.items()
                     if k.startswith("glance::")})
    removed = ["glance2::debug", "glance2::rabbitmq::password", "glance2::database::name",
               "glance2::keystone::password", "glance2::default_backend"]
    full = dict(data)
    for key in removed:
        del data[key]
    (tree.hieradata / "data" / "services" / "glance2.yaml").write_text(yaml.safe_dump(data))
    provision(tree.templates, tree.machines, tree.hieradata)
    before = tree.snapshot()

    result = render("--noop", "glance2", "glance", *tree.options())
    assert result.code == 6, result.err  # glance still runs
    lines = result.err.splitlines()
    found = [re.search(r"hiera key '([^']+)' not found", line) for line in lines]
    assert all(found) and len(lines) == len(removed), result.err
    assert sorted(m.group(1) for m in found if m) == sorted(removed)
    template = tree.templates / "glance2" / "glance-api.conf.j2"
    assert lines[0] == (f"render: glance2: {template}:5: hiera key 'glance2::debug' not found "
                        "and no default given")
    assert lines[1].startswith(f"render: glance2: {template}:6 (via _lib/openstack.j2:20): "
                               "hiera key 'glance2::rabbitmq::password'")
    assert "glance2:" not in result.out and "glance: would create" in result.out
    assert tree.snapshot() == before
    as_json = render("--noop", "--format", "json", "glance2", *tree.options())
    assert as_json.code == 4 and as_json.err == result.err.replace(
        "".join(line + "\n" for line in lines if "render: glance:" in line), "")
    [service] = json.loads(as_json.out)["services"]
    assert service["status"] == "failed" and service["files"] == []
    assert [(e["line"], e["via"], e["kind"]) for e in service["errors"]][:2] == [
        (5, None, "TemplateError"), (6, "_lib/openstack.j2:20", "TemplateError")]
    assert len(service["errors"]) == len(removed)
    # fixed in one go: the next run is clean
    (tree.hieradata / "data" / "services" / "glance2.yaml").write_text(yaml.safe_dump(full))
    again = render("--noop", "glance2", *tree.options())
    assert (again.code, again.err) == (2, ""), again.err
