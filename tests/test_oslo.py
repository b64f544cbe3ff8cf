"""Every rendered OpenStack INI file loads with real oslo.config (issue #5, "render checks").

The sample catalog is rendered with ``render --all`` into a fresh tree; every file whose
definition declares ``oslo_namespaces`` is then read by ``tests/oslo_check.py`` under
``.venv-oslo/bin/python``, where ``make test`` installs the OpenStack packages from PyPI (pinned by
``tests/oslo-constraints.txt``). All files go to one checker process: loading option definitions
is most of its cost. The namespaces of a file are data in its service.yaml, next to the file they
describe, so a service added to the catalog is checked as soon as it lands.

``service_templates/_lib/oslo_options.json`` (groups and multi-valued options per namespace, used
by render's INI overrides) is checked against the same packages, so it cannot drift from them;
``make oslo-data`` rewrites it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, Tree, render

from renderer.services import FileSpec, Root, Service, list_services, load_service

OSLO_PYTHON = Path(os.environ.get("RENDER_OSLO_PYTHON", REPO / ".venv-oslo" / "bin" / "python"))
CHECKER = REPO / "tests" / "oslo_check.py"
OPTION_DATA = REPO / "service_templates" / "_lib" / "oslo_options.json"
UPDATE = os.environ.get("RENDER_OSLO_UPDATE") == "1"


def catalog(templates: Path = REPO / "service_templates") -> list[Service]:
    return [load_service(templates, name) for name in list_services(templates)]


def oslo_files(services: list[Service]) -> list[tuple[Service, FileSpec]]:
    return [(service, spec) for service in services for spec in service.files
            if spec.oslo_namespaces]


def run_checker(*args: str, stdin: str = "") -> str:
    """The checker under the OpenStack virtualenv; a missing one fails, never skips."""
    assert OSLO_PYTHON.exists(), f"{OSLO_PYTHON} is missing: run make test (it installs it)"
    done = subprocess.run([str(OSLO_PYTHON), str(CHECKER), *args], input=stdin,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check(tree: Tree, files: list[tuple[Service, FileSpec]]) -> dict[str, list[str]]:
    request = []
    for service, spec in files:
        root = tree.machines / service.machine if spec.root is Root.CONTAINER else tree.host
        path = root / str(spec.dest).lstrip("/")
        assert path.is_file(), f"{service.name}: {spec.dest} was not rendered"
        request.append({"path": str(path), "namespaces": list(spec.oslo_namespaces or ())})
    return {item["path"]: item["errors"]
            for item in json.loads(run_checker("check", stdin=json.dumps(request)))}


def render_all(tree: Tree) -> None:
    result = render("--all", "--no-restart", *tree.options())
    assert result.code == 2, result.err


def test_every_ini_file_declares_its_namespaces():
    """An INI file without ``oslo_namespaces`` would escape the check: say ``[]`` for one that
    oslo.config does not read (api-paste.ini)."""
    undeclared = [f"{service.name}: {spec.dest}" for service in catalog()
                  for spec in service.files
                  if spec.validate == "ini" and spec.oslo_namespaces is None]
    assert undeclared == []


def test_sample_catalog_loads_with_oslo_config(tree: Tree):
    render_all(tree)
    files = oslo_files(catalog(tree.templates))
    assert any(service.name == "keystone" for service, _ in files)
    errors = check(tree, files)
    assert len(errors) == len(files)
    assert {path: problems for path, problems in errors.items() if problems} == {}


def test_checker_rejects_a_bad_value_and_an_unknown_option(tree: Tree):
    """The check can fail: an override with ``debug: maybe`` renders (render does not know
    option types) and oslo.config rejects it; an unknown option name is reported too."""
    with (tree.hieradata / "data" / "common.yaml").open("a") as data:
        data.write("keystone::config::keystone.conf:\n"
                   "  DEFAULT: {debug: maybe, no_such_option: 1}\n")
    render_all(tree)
    errors = check(tree, [(s, f) for s, f in oslo_files(catalog(tree.templates))
                          if s.name == "keystone"])
    [problems] = errors.values()
    assert any("[DEFAULT] debug: ConfigFileValueError" in p and "'maybe'" in p
               for p in problems), problems
    assert any("[DEFAULT] no_such_option: no such option" in p for p in problems), problems
    assert len(problems) == 2, problems


def test_option_data_matches_the_packages():
    """The groups and multi-valued options render ships equal what the packages register, for
    exactly the namespaces the catalog declares."""
    namespaces = sorted({ns for _, spec in oslo_files(catalog()) for ns in spec.oslo_namespaces
                         or ()})
    fresh = json.loads(run_checker("dump", *namespaces))
    if UPDATE:
        OPTION_DATA.write_text(json.dumps({
            "_comment": "Generated by make oslo-data from the packages pinned in "
                        "tests/oslo-constraints.txt; make test fails when it drifts.",
            "namespaces": fresh}, indent=1, sort_keys=True) + "\n")
    assert json.loads(OPTION_DATA.read_text())["namespaces"] == fresh


@pytest.mark.parametrize("namespace, group, option", [
    ("oslo.messaging", "oslo_messaging_notifications", "driver"),
    ("keystone", "federation", "trusted_dashboard"),
])
def test_known_multi_valued_options_are_in_the_data(namespace: str, group: str, option: str):
    """Multi-valued options the sample and LESSONS.md rely on: a dump that lost them would
    turn repeated keys into a comma list."""
    data = json.loads(OPTION_DATA.read_text())["namespaces"]
    assert option in data[namespace]["multi"][group]
