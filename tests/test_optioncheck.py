"""Option names and values checked before writing (renderer.optioncheck), end to end and unit.

A typo in an override or a template (``memcache_pool_maxsze``) is an error naming the file, the
section, the option and the closest registered name; a value oslo.config would refuse (a boolean,
an integer out of range, a port, a choice) too. One line per problem, nothing of that service is
written, the other services still run. tests/test_oslo.py checks with real oslo.config that what
is refused here is what oslo refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, Tree, render
from test_overrides import KEY, NODE_LEVEL, set_data, without_overrides

from renderer.optioncheck import Catalog, value_problem

DATA = json.loads((REPO / "service_templates" / "_lib" / "oslo_options.json").read_text())
CONF = Path("keystone/etc/keystone/keystone.conf")
SPEC = {"bool": {"type": "bool"}, "int": {"type": "int", "min": 1, "max": 10},
        "port": {"type": "port", "min": 0, "max": 65535}, "float": {"type": "float", "min": 0.0},
        "choice": {"type": "str", "choices": ["a", "b"]},
        "case": {"type": "str", "choices": ["Ab"], "ignore_case": True},
        "ints": {"type": "list", "item": {"type": "int"}}}


def catalog(*namespaces: str) -> Catalog:
    return Catalog(DATA["namespaces"], DATA["auth_plugins"], namespaces)


def run_all(tree: Tree) -> tuple[int, list[str]]:
    result = render("--all", "--no-restart", *tree.options())
    return result.code, result.err.splitlines()


def keystone_errors(tree: Tree, before: str | None = None) -> list[str]:
    """keystone's errors of a run that fails keystone alone (exit 6: changes and a failure)."""
    code, lines = run_all(tree)
    assert code == (4 if before else 6), lines
    conf = tree.machines / CONF
    assert (conf.read_text() if before else conf.exists()) == (before or False)  # not written
    assert (tree.machines / "glance/etc/glance/glance-api.conf").exists()  # the others ran
    errors = [line for line in lines if line.startswith("render: keystone:")]
    assert errors == lines  # one line per problem, all of them keystone's
    return errors


def test_a_typo_in_an_override_names_its_data_line_and_the_closest_option(tree: Tree):
    without_overrides(tree)
    node = set_data(tree, NODE_LEVEL, KEY, {"cache": {"memcache_pool_maxsze": 30}})
    line = node.read_text().splitlines().index("    memcache_pool_maxsze: 30") + 1
    assert keystone_errors(tree) == [
        f"render: keystone: {node}:{line}: {KEY}: /etc/keystone/keystone.conf: [cache] "
        "memcache_pool_maxsze: no such option in namespaces keystone, oslo.cache, oslo.log, "
        "oslo.messaging, oslo.policy, oslo.db, oslo.middleware, osprofiler "
        "(did you mean `memcache_pool_maxsize`?)"]


def test_bad_override_values_are_one_line_each(tree: Tree):
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {
        "DEFAULT": {"debug": "maybe"}, "cache": {"memcache_pool_maxsize": "lots",
                                                 "expiration_time": 0,
                                                 "backend": "dogpile.cache.nope"},
        "totp": {"included_previous_windows": 11}, "token": {"caching": "yes"}})
    errors = keystone_errors(tree)
    expected = ["[DEFAULT] debug: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)",
                "[cache] memcache_pool_maxsize: 'lots' is not an integer",
                "[cache] expiration_time: '0' is below the minimum 1",
                "[cache] backend: 'dogpile.cache.nope' is not one of dogpile.cache.bmemcached",
                "[totp] included_previous_windows: '11' is above the maximum 10"]
    assert len(errors) == len(expected), errors
    for error, message in zip(errors, expected):
        assert message in error, errors


def test_a_bad_port_in_an_override(tree: Tree):
    set_data(tree, "services/cinder.yaml", "cinder::config::cinder.conf",
             {"DEFAULT": {"osapi_volume_listen_port": 70000}})
    code, lines = run_all(tree)
    assert code == 6
    [error] = [line for line in lines if "cinder" in line]
    assert error.endswith("[DEFAULT] osapi_volume_listen_port: '70000' is not a port number "
                          "(0-65535)"), error


def test_deprecated_names_and_groups_are_accepted(tree: Tree):
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {"cache": {"memcache_password": "x"},
                                     "assignment": {"list_limit": 5}})
    result = render("--no-restart", "keystone", *tree.options())
    assert (result.code, result.err) == (2, "")
    assert "[assignment]\nlist_limit=5\n" in (tree.machines / CONF).read_text()


def test_a_secret_value_is_never_quoted():
    [(_, _, message)] = catalog("oslo.cache").problems(
        [("cache", "enabled", ("S3cret-but-not-bool",))], {}, {"S3cret-but-not-bool"})
    assert message == "[cache] enabled: the value is not a boolean (true/false, yes/no, " \
        "on/off, 1/0)"


def test_a_typo_planted_in_a_template_is_at_its_rendered_line(tree: Tree):
    """At the line of the file as it would be written: the sample's overrides add lines."""
    assert run_all(tree) == (2, [])
    before = (tree.machines / CONF).read_text()
    rendered = before.splitlines()
    at = rendered.index("[cache]") + 1  # the 1-based line of [cache]
    template = tree.templates / "keystone" / "keystone.conf.j2"
    text = template.read_text()
    template.write_text(text.replace("[cache]\n", "[cache]\nmemcache_pool_maxsze=30\n"
                                     "enabled=maybe\n[cahce]\nenabled=True\n[cache]\n", 1))
    errors = keystone_errors(tree, before)
    where = "render: keystone: /etc/keystone/keystone.conf (from keystone.conf.j2)"
    assert errors[0] == f"{where}:{at + 1}: option: [cache] memcache_pool_maxsze: no such " \
        "option in namespaces keystone, oslo.cache, oslo.log, oslo.messaging, oslo.policy, " \
        "oslo.db, oslo.middleware, osprofiler (did you mean `memcache_pool_maxsize`?)"
    assert errors[1].startswith(f"{where}:{at + 2}: option: [cache] enabled: 'maybe' is not")
    assert errors[2].startswith(f"{where}:{at + 4}: option: [cahce]: no such section")
    assert errors[2].endswith("(did you mean `[cache]`?)")
    assert len(errors) == 3, errors


def test_the_sample_catalog_renders_without_option_errors(tree: Tree):
    code, lines = run_all(tree)
    assert (code, lines) == (2, [])


def test_auth_plugin_options_come_with_auth_type():
    check = catalog("keystonemiddleware.auth_token")
    settings = [("keystone_authtoken", "auth_type", ("password",)),
                ("keystone_authtoken", "username", ("glance",))]
    values = {("keystone_authtoken", "auth_type"): "password"}
    assert check.problems(settings, values, set()) == []
    [(_, _, message)] = check.problems(settings[1:], {}, set())
    assert message.startswith("[keystone_authtoken] username: no such option")
    [(_, _, message)] = check.problems([("keystone_authtoken", "auth_type", ("pasword",))],
                                       {}, set())
    assert "'pasword' is no keystoneauth plugin" in message


def test_cinder_backend_sections_are_the_ones_enabled_backends_lists():
    check = catalog("cinder")
    values = {("DEFAULT", "enabled_backends"): "rbd-1, lvm"}
    settings = [("rbd-1", "volume_driver", ("cinder.volume.drivers.rbd.RBDDriver",)),
                ("lvm", "volume_backend_name", ("lvm",)), ("rbd-2", "volume_driver", ("x",))]
    [(section, _, message)] = check.problems(settings, values, set())
    assert section == "rbd-2" and message.startswith("[rbd-2]: no such section")


def test_glance_store_sections_take_their_store_types_options():
    check = catalog("glance.api", "glance.multi_store")
    values = {("DEFAULT", "enabled_backends"): "ceph:rbd,local:file"}
    settings = [("ceph", "rbd_store_pool", ("images",)),
                ("local", "filesystem_store_datadir", ("/var/lib/glance",)),
                ("os_glance_staging_store", "filesystem_store_datadir", ("/s",)),
                ("ceph", "filesystem_store_datadir", ("/x",))]
    [(section, option, message)] = check.problems(settings, values, set())
    assert (section, option) == ("ceph", "filesystem_store_datadir"), message


def test_sections_match_as_oslo_normalises_them():
    assert catalog("oslo.cache").problems([("Cache", "enabled", ("True",))], {}, set()) == []


@pytest.mark.parametrize("kind, value, problem", [
    ("bool", "TRUE", None), ("bool", "off", None), ("bool", "t", "is not a boolean"),
    ("bool", "", "is not a boolean"),
    ("int", " 5 ", None), ("int", "", None), ("int", "1_0", None), ("int", "5.0", "integer"),
    ("int", "0", "below the minimum 1"), ("int", "11", "above the maximum 10"),
    ("port", "65535", None), ("port", "-1", "not a port number"), ("port", "http", "port"),
    ("float", "1e3", None), ("float", "-0.5", "below the minimum 0.0"),
    ("choice", "a", None), ("choice", "'b'", None), ("choice", "A", "is not one of a, b"),
    ("case", "AB", None), ("ints", "1, 2,3", None), ("ints", "1,x", "item 'x'"),
    ("int", "$other", None),
])
def test_value_problem(kind: str, value: str, problem: str | None):
    found = value_problem(SPEC[kind], value)
    assert found is None if problem is None else (found is not None and problem in found), found


def test_a_sites_option_data_earlier_in_the_search_path_wins(tree: Tree, tmp_path: Path):
    """Another release's data (README, "Another OpenStack release") in the site directory, first
    on the search path (tree.options() appends the shipped templates after it)."""
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {"cache": {"site_release_option": 3}})
    site = tmp_path / "site"
    (site / "_lib").mkdir(parents=True)
    data = json.loads((tree.templates / "_lib" / "oslo_options.json").read_text())
    data["namespaces"]["oslo.cache"]["options"]["cache"]["site_release_option"] = \
        {"type": "int", "max": 2}
    (site / "_lib" / "oslo_options.json").write_text(json.dumps(data))
    shipped = render("--no-restart", "keystone", *tree.options())
    assert shipped.code == 4 and "[cache] site_release_option: no such option" in shipped.err
    result = render("--no-restart", "keystone", "--templates", str(site), *tree.options())
    assert result.code == 4 and result.err.endswith(
        "[cache] site_release_option: '3' is above the maximum 2\n"), result.err
    set_data(tree, NODE_LEVEL, KEY, {"cache": {"site_release_option": 2}})
    result = render("--no-restart", "keystone", "--templates", str(site), *tree.options())
    assert (result.code, result.err) == (2, "")
    assert "site_release_option=2\n" in (tree.machines / CONF).read_text()
