"""Every rendered OpenStack INI file loads with real oslo.config (issue #5, "render checks").

The sample catalog is rendered with ``render --all`` into a fresh tree; every file whose
definition declares ``oslo_namespaces`` is then read by ``tests/oslo_check.py`` under
``.venv-oslo/bin/python``, where ``make test`` installs the OpenStack packages from PyPI (pinned by
``tests/oslo-constraints.txt``). All files go to one checker process: loading option definitions
is most of its cost. The namespaces of a file are data in its service.yaml, next to the file they
describe, so a service added to the catalog is checked as soon as it lands.

``service_templates/_lib/oslo_options.json`` (groups, multi-valued options and every option's
type and bounds per namespace, plus keystoneauth's plugin options, used by render's INI overrides
and option checks) is checked against the same packages, so it cannot drift from them;
``make oslo-data`` rewrites it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, Tree, render

from renderer.services import Entry, ServiceDef, list_services, load_service

pytestmark = pytest.mark.slow  # real oslo.config, from the OpenStack virtualenv

OSLO_PYTHON = Path(os.environ.get("RENDER_OSLO_PYTHON", REPO / ".venv-oslo" / "bin" / "python"))
CHECKER = REPO / "tests" / "oslo_check.py"
# A site running another release writes its own data elsewhere (README, "Option checks").
OPTION_DATA = Path(os.environ.get("RENDER_OSLO_DATA",
                                  REPO / "service_templates" / "_lib" / "oslo_options.json"))
UPDATE = os.environ.get("RENDER_OSLO_UPDATE") == "1"


def catalog(templates: Path = REPO / "service_templates") -> list[ServiceDef]:
    return [load_service(templates, name) for name in list_services(templates)]


def specs(service: ServiceDef) -> list[Entry]:
    """Every file entry of a definition, also those whose machine or copies the data decides
    (bound only when rendering), and those it includes from _lib."""
    return list(service.entries)


def run_checker(*args: str, stdin: str = "") -> str:
    """The checker under the OpenStack virtualenv; a missing one fails, never skips."""
    assert OSLO_PYTHON.exists(), f"{OSLO_PYTHON} is missing: run make test (it installs it)"
    done = subprocess.run([str(OSLO_PYTHON), str(CHECKER), *args], input=stdin,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def render_all(tree: Tree) -> list[dict[str, object]]:
    """Render the catalog; every OpenStack INI file written, as {path, service, namespaces}.

    Paths come from render's own JSON report, so a file repeated per machine is checked in
    each machine; its namespaces from the definition entry with the same destination.
    """
    result = render("--all", "--no-restart", "--format", "json", *tree.options())
    assert result.code == 2, result.err
    definitions = {service.name: specs(service) for service in catalog(tree.templates)}
    files = []
    for report in json.loads(result.out)["services"]:
        for written in report["files"]:
            path = str(written["path"])
            matches = {spec.oslo_namespaces for spec in definitions[report["service"]]
                       if spec.validate == "ini" and path.endswith(str(spec.dest))}
            assert len(matches) <= 1, f"{path}: entries disagree on oslo_namespaces"
            if matches and (namespaces := matches.pop()):
                files.append({"path": path, "service": report["service"],
                              "namespaces": list(namespaces)})
    return files


def check(files: list[dict[str, object]]) -> dict[str, list[str]]:
    request = [{"path": f["path"], "namespaces": f["namespaces"], "service": f["service"]}
               for f in files]
    return {item["path"]: item["errors"]
            for item in json.loads(run_checker("check", stdin=json.dumps(request)))}


# Only for the failure message below: what each project's oslo-config-generator configuration
# lists for its sample file, checked to load with the pinned packages. The definitions are the
# source of truth (a template may need more, or fewer).
_COMMON = ["oslo.log", "oslo.messaging", "oslo.policy", "keystonemiddleware.auth_token",
           "osprofiler"]
GENERATOR_NAMESPACES = {
    "keystone.conf": ["keystone", "oslo.cache", "oslo.log", "oslo.messaging", "oslo.policy",
                      "oslo.db", "oslo.middleware", "osprofiler"],
    "glance-api.conf": ["glance.api", "glance.store", "glance.multi_store", "castellan.config",
                        "oslo.concurrency", "oslo.db", "oslo.limit", "oslo.middleware.cors",
                        "oslo.middleware.healthcheck", "oslo.middleware.http_proxy_to_wsgi",
                        "oslo.reports", *_COMMON],
    "placement.conf": ["placement.conf", "keystonemiddleware.auth_token", "oslo.log",
                       "oslo.middleware.cors", "oslo.policy", "osprofiler"],
    "nova.conf": ["nova.conf", "oslo.privsep", "oslo.service.periodic_task",
                  "oslo.service.service", "oslo.middleware", "oslo.concurrency", "oslo.reports",
                  "oslo.versionedobjects", "oslo.limit", "os_vif", *_COMMON],
    "neutron.conf": ["neutron", "neutron.agent", "neutron.db", "neutron.experimental",
                     "neutron.extensions", "nova.auth", "ironic.auth", "placement.auth",
                     "designate.auth", "oslo.cache", "oslo.db", "oslo.privsep",
                     "oslo.concurrency", "oslo.middleware.cors", "oslo.middleware.healthcheck",
                     "oslo.middleware.http_proxy_to_wsgi", "oslo.reports",
                     "oslo.service.periodic_task", "oslo.service.service",
                     "oslo.service.sslutils", "oslo.service.wsgi", "oslo.versionedobjects",
                     *_COMMON],
    "ml2_conf.ini": ["neutron.ml2", "oslo.log"],
    "l3_agent.ini": ["neutron.base.agent", "neutron.l3.agent", "oslo.log"],
    "dhcp_agent.ini": ["neutron.base.agent", "neutron.dhcp.agent", "oslo.log"],
    "metadata_agent.ini": ["neutron.metadata.agent", "oslo.log"],
    "openvswitch_agent.ini": ["neutron.ml2.ovs.agent", "oslo.log"],
    "cinder.conf": ["cinder", "castellan.config", "oslo.config", "oslo.concurrency", "oslo.db",
                    "oslo.middleware", "oslo.privsep", "oslo.reports",
                    "oslo.service.periodic_task", "oslo.service.service",
                    "oslo.service.sslutils", "oslo.service.wsgi", "oslo.versionedobjects",
                    *_COMMON],
    "heat.conf": ["heat.common.cache", "heat.common.config", "heat.common.context",
                  "heat.common.crypt", "heat.engine.clients.os.keystone.heat_keystoneclient",
                  "heat.engine.hot.functions", "heat.common.wsgi", "heat.engine.clients",
                  "heat.engine.notification", "heat.engine.resources", "heat.api.aws.ec2token",
                  "oslo.cache", "oslo.middleware", "oslo.reports", "oslo.service.service",
                  "oslo.service.periodic_task", "oslo.service.sslutils",
                  "oslo.versionedobjects", *_COMMON],
    "ironic.conf": ["ironic", "oslo.db", "oslo.middleware.cors", "oslo.middleware.healthcheck",
                    "oslo.middleware.http_proxy_to_wsgi", "oslo.concurrency", "oslo.reports",
                    "oslo.service.service", "oslo.service.periodic_task",
                    "oslo.service.sslutils", *_COMMON],
    # murano 16.0.0 (its last release): "keystone_authtoken" there is keystonemiddleware's list
    "murano.conf": ["murano", "keystonemiddleware.auth_token", "oslo.db", "oslo.log",
                    "oslo.messaging", "oslo.middleware.cors", "oslo.policy",
                    "oslo.service.service", "castellan.config"],
}


def test_every_ini_file_declares_its_namespaces():
    """An INI file without ``oslo_namespaces`` would escape the check: say ``[]`` for one that
    oslo.config does not read (api-paste.ini)."""
    undeclared = [f"{service.name}: {spec.dest}: oslo_namespaces: "
                  f"{GENERATOR_NAMESPACES.get(spec.dest.name, '[...]')}"
                  for service in catalog() for spec in specs(service)
                  if spec.validate == "ini" and spec.oslo_namespaces is None]
    assert undeclared == [], "declare them in service.yaml (then make oslo-data):\n" + \
        "\n".join(undeclared)


def test_sample_catalog_loads_with_oslo_config(tree: Tree):
    files = render_all(tree)
    assert {"keystone", "ironic", "murano"} <= {f["service"] for f in files}
    errors = check(files)
    assert len(errors) == len(files)
    assert {path: problems for path, problems in errors.items() if problems} == {}


@pytest.mark.parametrize("service, section, typo", [
    ("ironic", "api", "api_worker"),
    ("murano", "engine", "engine_worker"),  # murano 16.0.0's own option, misspelt
])
def test_new_services_are_read_by_their_release(tree: Tree, service: str, section: str,
                                                typo: str):
    """ironic.conf and murano.conf are read against the options of the pinned ironic and of
    murano's last release: a misspelt option planted after rendering is reported."""
    [found] = [f for f in render_all(tree) if f["service"] == service]
    conf = Path(str(found["path"]))
    conf.write_text(conf.read_text().replace(f"[{section}]\n", f"[{section}]\n{typo}=2\n", 1))
    [problems] = check([found]).values()
    assert len(problems) == 1 and f"[{section}] {typo}: no such option" in problems[0], problems


def test_checker_rejects_a_bad_value_and_an_unknown_option(tree: Tree):
    """The check can fail: ``debug = maybe`` planted in the rendered keystone.conf (render
    itself refuses it before writing, tests/test_optioncheck.py) is rejected by oslo.config; an
    unknown option name is reported too."""
    [keystone] = [f for f in render_all(tree) if f["service"] == "keystone"]
    conf = Path(str(keystone["path"]))
    conf.write_text(conf.read_text().replace("[DEFAULT]\n", "[DEFAULT]\ndebug = maybe\n"
                                             "no_such_option = 1\n", 1).replace(
        "\ndebug=False\n", "\n", 1))
    [problems] = check([keystone]).values()
    assert any("[DEFAULT] debug: ConfigFileValueError" in p and "'maybe'" in p
               for p in problems), problems
    assert any("[DEFAULT] no_such_option: no such option" in p for p in problems), problems
    assert len(problems) == 2, problems


def test_checker_reads_backend_and_store_sections_as_the_services_register_them(tree: Tree):
    """cinder's backend sections and glance's store sections exist only once enabled_backends
    names them (the services register their options at start-up): the checker registers them
    the same way, so a typo or a bad value planted in one is caught."""
    files = {f["service"]: f for f in render_all(tree)
             if f["service"] in ("cinder", "glance")}
    plants = (("cinder", "[rbd-1]\n", "rbd_pol=x\n", ("rbd_max_clone_depth=5", "=many")),
              ("glance", "[ceph]\n", "rbd_store_pol=x\n", ("rbd_store_chunk_size=8", "=big")))
    for service, section, typo, (option, bad) in plants:
        conf = Path(str(files[service]["path"]))
        text = conf.read_text().replace(section, section + typo, 1)
        conf.write_text(text.replace(option, option.split("=")[0] + bad, 1))
    problems = check(list(files.values()))
    cinder, glance = (problems[str(files[s]["path"])] for s in ("cinder", "glance"))
    assert any("[rbd-1] rbd_pol: no such option" in p for p in cinder), cinder
    assert any("[rbd-1] rbd_max_clone_depth: ConfigFileValueError" in p for p in cinder), cinder
    assert any("[ceph] rbd_store_pol: no such option" in p for p in glance), glance
    assert any("[ceph] rbd_store_chunk_size: ConfigFileValueError" in p for p in glance), glance


def test_option_data_matches_the_packages():
    """The groups and multi-valued options render ships equal what the packages register, for
    exactly the namespaces the catalog declares."""
    namespaces = {service.name: sorted({ns for spec in specs(service)
                                        for ns in spec.oslo_namespaces or ()})
                  for service in catalog()}
    fresh = json.loads(run_checker("dump", stdin=json.dumps(
        {name: used for name, used in namespaces.items() if used})))
    if UPDATE:
        OPTION_DATA.parent.mkdir(parents=True, exist_ok=True)
        OPTION_DATA.write_text(json.dumps({
            "_comment": "Generated by make oslo-data from the packages pinned in "
                        "tests/oslo-constraints.txt; make test fails when it drifts.",
            **fresh}, indent=1, sort_keys=True) + "\n")
    shipped = json.loads(OPTION_DATA.read_text())
    assert {k: shipped.get(k) for k in fresh} == fresh


@pytest.mark.parametrize("namespace, group, option", [
    ("oslo.messaging", "oslo_messaging_notifications", "driver"),
    ("keystone", "federation", "trusted_dashboard"),
])
def test_known_multi_valued_options_are_in_the_data(namespace: str, group: str, option: str):
    """Multi-valued options the sample and LESSONS.md rely on: a dump that lost them would
    turn repeated keys into a comma list."""
    data = json.loads(OPTION_DATA.read_text())["namespaces"]
    assert option in data[namespace]["multi"][group]


def test_checker_knows_auth_plugin_options_and_oslo_syntax(tmp_path: Path):
    """``auth_type = password`` brings keystoneauth's password options into the group, as
    keystonemiddleware registers them; ``key: value`` and a ``#`` in a value
    are oslo syntax; an option the plugin lacks is still unknown."""
    conf = tmp_path / "api.conf"
    conf.write_text("[DEFAULT]\ndebug: true\n\n[keystone_authtoken]\nauth_type = password\n"
                    "auth_url = http://192.0.2.10:5000\nusername = glance\n"
                    "password = pa#ss\nmemcached_servers = a:1,b:2\nbogus = 1\n")
    request = [{"path": str(conf), "service": "t",
                "namespaces": ["keystonemiddleware.auth_token", "oslo.log"]}]
    [result] = json.loads(run_checker("check", stdin=json.dumps(request)))
    assert result["errors"] == [f"{conf}:10: [keystone_authtoken] bogus: no such option in "
                                "namespaces keystonemiddleware.auth_token, oslo.log"]


# (service, namespace, section, option, value): values render refuses (renderer.optioncheck)...
REFUSED = [
    ("lib", "oslo.log", "DEFAULT", "debug", "maybe"), ("lib", "oslo.log", "DEFAULT", "debug", "t"),
    ("lib", "oslo.log", "DEFAULT", "debug", ""),
    ("lib", "oslo.cache", "cache", "expiration_time", "0"),
    ("lib", "oslo.cache", "cache", "memcache_pool_maxsize", "lots"),
    ("lib", "oslo.cache", "cache", "memcache_pool_maxsize", "5.0"),
    ("lib", "oslo.cache", "cache", "backend", "dogpile.cache.nope"),
    ("lib", "oslo.messaging", "oslo_messaging_rabbit", "kombu_reconnect_delay", "4.6"),
    ("lib", "oslo.db", "database", "connection_debug", "101"),
    ("keystone", "keystone", "totp", "included_previous_windows", "11"),
    ("cinder", "cinder", "DEFAULT", "osapi_volume_listen_port", "70000"),
    ("cinder", "cinder", "DEFAULT", "osapi_volume_listen_port", "-1"),
    ("cinder", "cinder", "DEFAULT", "osapi_volume_listen_port", "http"),
]
# ... and values it accepts, deprecated names and groups included
ACCEPTED = [
    ("lib", "oslo.log", "DEFAULT", "debug", "TRUE"), ("lib", "oslo.log", "DEFAULT", "debug", "off"),
    ("lib", "oslo.cache", "cache", "expiration_time", "1_0"),
    ("lib", "oslo.cache", "cache", "memcache_pool_maxsize", ""),
    ("lib", "oslo.cache", "cache", "backend", "oslo_cache.dict"),
    ("lib", "oslo.cache", "cache", "memcache_password", "x"),
    ("lib", "oslo.messaging", "oslo_messaging_rabbit", "kombu_reconnect_delay", "4.5"),
    ("keystone", "keystone", "assignment", "list_limit", "5"),
    ("cinder", "cinder", "DEFAULT", "osapi_volume_listen_port", "65535"),
]


def test_what_render_refuses_oslo_config_refuses(tmp_path: Path):
    """Each value render's option check refuses (and only those) oslo.config refuses too, read
    from a file as the service reads it; a typo render flags is unknown to oslo as well."""
    from renderer.optioncheck import Catalog

    data = json.loads(OPTION_DATA.read_text())
    cases = [(*case, True) for case in REFUSED] + [(*case, False) for case in ACCEPTED] + \
        [("lib", "oslo.cache", "cache", "memcache_pool_maxsze", "30", True)]
    request = []
    for number, (service, namespace, section, option, value, bad) in enumerate(cases):
        problems = Catalog(data["namespaces"], data["auth_plugins"], (namespace,)).problems(
            [(section, option, (value,))], {}, set())
        assert bool(problems) == bad, (namespace, section, option, value, problems)
        conf = tmp_path / f"{number}.conf"
        conf.write_text(f"[{section}]\n{option} = {value}\n")
        request.append({"path": str(conf), "service": service, "namespaces": [namespace]})
    results = json.loads(run_checker("check", stdin=json.dumps(request)))
    by_path = {item["path"]: item["errors"] for item in results}
    for case, item in zip(cases, request):
        errors = by_path[item["path"]]
        assert bool(errors) == case[-1], (case, errors)
