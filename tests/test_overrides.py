"""INI overrides end to end: ``<service>::config::<file>`` hieradata merged into rendered files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import Tree, render

CONF = Path("keystone/etc/keystone/keystone.conf")
KEY = "keystone::config::keystone.conf"
SERVICE_LEVEL = "services/keystone.yaml"
NODE_LEVEL = "nodes/controller1.example.com.yaml"


def set_data(tree: Tree, relpath: str, key: str, value: object) -> Path:
    path = tree.hieradata / "data" / relpath
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def without_overrides(tree: Tree) -> None:
    """The sample ships overrides of its own; most tests start from none."""
    for relpath in (SERVICE_LEVEL, NODE_LEVEL):
        path = tree.hieradata / "data" / relpath
        data = yaml.safe_load(path.read_text())
        data.pop(KEY, None)
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def conf_after(tree: Tree, *args: str) -> str:
    result = render("--no-restart", *args, "keystone", *tree.options())
    assert result.code == 2, result.err
    return (tree.machines / CONF).read_text()


def test_node_level_wins_option_by_option(tree: Tree):
    without_overrides(tree)
    set_data(tree, SERVICE_LEVEL, KEY, {"DEFAULT": {"max_token_size": 255, "debug": True}})
    set_data(tree, NODE_LEVEL, KEY, {"DEFAULT": {"max_token_size": 300}})
    text = conf_after(tree)
    assert text.startswith("# Managed by render from hieradata.")  # comments kept
    assert "[DEFAULT]\ndebug=True\ntransport_url=" in text             # replaced in place
    assert "max_token_size=300\n\n[cache]" in text                    # added at the section end


def test_lists_booleans_numbers_and_removal(tree: Tree):
    without_overrides(tree)
    set_data(tree, SERVICE_LEVEL, KEY, {
        "oslo_messaging_notifications": {"driver": ["noop", "routing"]},   # MultiStrOpt
        "cache": {"backend_argument": ["a:1", "b:2"],                     # MultiStrOpt
                  "memcache_servers": ["x:1", "y:2"],                    # ListOpt
                  "enabled": False, "expiration_time": 30},
        "token": {"caching": "<SERVICE DEFAULT>"},
    })
    text = conf_after(tree)
    assert "[oslo_messaging_notifications]\ndriver=noop\ndriver=routing\n" in text
    assert "backend_argument=a:1\nbackend_argument=b:2\n" in text
    assert "memcache_servers=x:1,y:2\n" in text
    assert "enabled=False\n" in text and "expiration_time=30\n" in text
    assert "caching" not in text.split("[token]")[1]


def test_section_of_a_known_oslo_group_is_appended(tree: Tree):
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {"oslo_policy": {"enforce_new_defaults": True}})
    assert conf_after(tree).endswith("\n\n[oslo_policy]\nenforce_new_defaults=True\n")


def test_lookup_options_merge_replaces_the_default_deep_merge(tree: Tree):
    without_overrides(tree)
    set_data(tree, SERVICE_LEVEL, KEY, {"DEFAULT": {"max_token_size": 255}})
    set_data(tree, NODE_LEVEL, KEY, {"cache": {"expiration_time": 30}})
    set_data(tree, "common.yaml", "lookup_options", {
        **yaml.safe_load((tree.hieradata / "data" / "common.yaml").read_text())["lookup_options"],
        KEY: {"merge": "first"}})
    text = conf_after(tree)
    assert "expiration_time=30\n" in text and "max_token_size" not in text


def test_overridden_secrets_are_masked(tree: Tree):
    without_overrides(tree)
    set_data(tree, SERVICE_LEVEL, KEY, {"cache": {"memcache_password": "Cache-S3cret-key"}})
    result = render("--noop", "--diff", "keystone", *tree.options())
    assert "memcache_password=<redacted>#" in result.out
    assert "Cache-S3cret-key" not in result.out + result.err


def test_sensitive_override_values_are_masked(tree: Tree):
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {"cache": {"backend_argument": ["url:Zz-S3cret-zZ"]}})
    common = tree.hieradata / "data" / "common.yaml"
    options = yaml.safe_load(common.read_text())["lookup_options"]
    set_data(tree, "common.yaml", "lookup_options", {**options, KEY: {"convert_to": "Sensitive"}})
    result = render("--noop", "--diff", "keystone", *tree.options())
    assert result.code == 2, result.err
    assert "backend_argument=<redacted>#" in result.out, result.out
    assert "Zz-S3cret-zZ" not in result.out + result.err


@pytest.mark.parametrize("level, key, value, message", [
    (NODE_LEVEL, KEY, {"oslo_polcy": {"enforce_scope": True}},
     f"{KEY}: section [oslo_polcy] is not in /etc/keystone/keystone.conf: its template does not "
     "render it nor does any oslo.config namespace of it"),
    (SERVICE_LEVEL, "keystone::config::glance-api.conf", {"DEFAULT": {"debug": True}},
     "keystone::config::glance-api.conf: keystone renders no file named 'glance-api.conf' "
     "(its INI files: keystone.conf)"),
    (SERVICE_LEVEL, "keystone::config::keystone.nspawn", {"Exec": {"Boot": "yes"}},
     "keystone::config::keystone.nspawn: /etc/systemd/nspawn/keystone.nspawn is not an INI file"),
    (NODE_LEVEL, KEY, ["debug"], f"{KEY}: must be a hash of {{section: {{option: value}}}}, "
     "not an array"),
    (NODE_LEVEL, KEY, {"DEFAULT": "debug=True"}, f"{KEY}: section [DEFAULT] must be a hash"),
    (NODE_LEVEL, KEY, {"DEFAULT": {"debug": {"a": 1}}},
     f"{KEY}: [DEFAULT] debug: must be a string, number, boolean or list of those, not a hash"),
    (NODE_LEVEL, KEY, {"DEFAULT": {"debug": [["a"]]}}, f"{KEY}: [DEFAULT] debug: must be"),
    (NODE_LEVEL, KEY, {"DEFAULT": {"debug": None}}, f"{KEY}: [DEFAULT] debug: null value"),
    (NODE_LEVEL, KEY, {"DEFAULT": {"debug": "a\nb"}}, f"{KEY}: [DEFAULT] debug: a value cannot"),
    (NODE_LEVEL, KEY, {"DEFAULT": {"de bug": 1}}, f"{KEY}: [DEFAULT]: invalid option name"),
])
def test_bad_override_is_one_line_exit_4_nothing_written(tree: Tree, level: str, key: str,
                                                         value: object, message: str):
    without_overrides(tree)
    data_file = set_data(tree, level, key, value)
    before = tree.snapshot()
    result = render("--no-restart", "keystone", *tree.options())
    assert result.code == 4
    [line] = result.err.splitlines()
    assert line.startswith(f"render: keystone: {data_file}:")
    assert message in line
    assert tree.snapshot() == before


def test_error_names_the_line_of_the_bad_section(tree: Tree):
    without_overrides(tree)
    node = tree.hieradata / "data" / NODE_LEVEL
    node.write_text(node.read_text() + f"{KEY}:\n  DEFAULT:\n    debug: true\n"
                    "  olso_policy:\n    enforce_scope: true\n")
    line = node.read_text().splitlines().index("  olso_policy:") + 1
    result = render("--noop", "keystone", *tree.options())
    assert result.code == 4
    assert result.err.startswith(f"render: keystone: {node}:{line}: {KEY}: section [olso_policy]")


def test_lists_from_several_levels_are_unioned_like_puppet_deep_merge(tree: Tree):
    without_overrides(tree)
    set_data(tree, SERVICE_LEVEL, KEY, {"oslo_messaging_notifications": {"driver": ["log"]}})
    set_data(tree, NODE_LEVEL, KEY, {"oslo_messaging_notifications": {"driver": ["noop"]}})
    # the lower level first, then what the higher level adds (the deep_merge gem's order)
    assert "[oslo_messaging_notifications]\ndriver=log\ndriver=noop\n" in conf_after(tree)


def test_empty_multi_valued_list_removes_the_option(tree: Tree):
    without_overrides(tree)
    set_data(tree, NODE_LEVEL, KEY, {"oslo_messaging_notifications": {"driver": []}})
    assert "[oslo_messaging_notifications]\n\n[token]" in conf_after(tree)


def test_every_file_of_that_name_gets_the_override(tree: Tree):
    """A service that renders the same file for several daemons (nova.conf for nova-api,
    -conductor and -scheduler) gets one override for all of them."""
    without_overrides(tree)
    definition = tree.templates / "keystone" / "service.yaml"
    data = yaml.safe_load(definition.read_text())
    data["files"].append({**data["files"][0], "dest": "/etc/keystone/second/keystone.conf",
                          "create_dirs": True})
    definition.write_text(yaml.safe_dump(data, sort_keys=False))
    set_data(tree, NODE_LEVEL, KEY, {"DEFAULT": {"max_token_size": 300}})
    text = conf_after(tree)
    second = (tree.machines / "keystone/etc/keystone/second/keystone.conf").read_text()
    assert text == second and "max_token_size=300\n" in text


def test_every_bad_override_in_one_run(tree: Tree):
    """Every bad key, section and option of every override is a line of the same run, each at
    its data file; nothing is written."""
    without_overrides(tree)
    node = set_data(tree, NODE_LEVEL, KEY, {"oslo_polcy": {"enforce_scope": True},
                                            "DEFAULT": {"debug": None, "de bug": 1},
                                            "tokn": {"expiration": 1}})
    service = set_data(tree, SERVICE_LEVEL, "keystone::config::glance-api.conf",
                       {"DEFAULT": {"debug": True}})
    before = tree.snapshot()
    result = render("--no-restart", "keystone", *tree.options())
    assert result.code == 4
    lines = result.err.splitlines()
    conf = "/etc/keystone/keystone.conf: its template does not render it nor does any " \
        "oslo.config namespace of it"
    assert sorted(line.split(": ", 2)[2] for line in lines) == sorted([
        f"{node}:6: {KEY}: [DEFAULT] debug: null value; write '<SERVICE DEFAULT>' to remove "
        "the option",
        f"{node}:5: {KEY}: [DEFAULT]: invalid option name 'de bug'",
        f"{node}:3: {KEY}: section [oslo_polcy] is not in {conf}",
        f"{node}:8: {KEY}: section [tokn] is not in {conf}",
        f"{service}:21: keystone::config::glance-api.conf: keystone renders no file named "
        "'glance-api.conf' (its INI files: keystone.conf)"]), result.err
    assert tree.snapshot() == before
