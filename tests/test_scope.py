from __future__ import annotations

import json
from pathlib import Path

import pytest

from renderer.errors import UsageError
from renderer.scope import build_scope, native_facts


def test_native_facts_have_the_minimal_set():
    facts = native_facts()
    for key in ("hostname", "domain", "fqdn"):
        assert isinstance(facts[key], str)
        assert facts["networking"][key] == facts[key]
    assert facts["os"]["family"] and facts["os"]["name"]
    assert "major" in facts["os"]["release"]


def test_node_sets_certname_and_clientcert():
    scope = build_scope(node="controller1.example.com")
    assert scope.trusted["certname"] == "controller1.example.com"
    assert scope.trusted["hostname"] == "controller1"
    assert scope.trusted["domain"] == "example.com"
    assert scope.facts["clientcert"] == "controller1.example.com"


def test_facts_file_json_yaml_and_puppet_cache(tmp_path: Path):
    plain = tmp_path / "facts.json"
    plain.write_text(json.dumps({"os": {"family": "RedHat"}, "role": "controller"}))
    scope = build_scope(facts_file=str(plain))
    assert scope.facts["os"] == {"family": "RedHat"} and scope.top("role") == "controller"
    cached = tmp_path / "cached.yaml"
    cached.write_text("--- !ruby/object:Puppet::Node::Facts\nname: node1\nvalues:\n"
                      "  datacenter: dc1\ntimestamp: 2026-11-21T07:00:00.12+00:00\n")
    assert build_scope(facts_file=str(cached)).facts["datacenter"] == "dc1"


def test_unreadable_facts_file_is_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="cannot read"):
        build_scope(facts_file=str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(UsageError, match=r"bad.yaml:2:1: YAML syntax error"):
        build_scope(facts_file=str(bad))


def test_var_overrides_facts_and_nested():
    scope = build_scope(variables=["role=compute", "os.family=RedHat", "::zone=z1"])
    assert scope.top("role") == "compute" and "role" not in scope.facts  # a variable, as site.pp
    assert scope.facts["os"]["family"] == "RedHat"
    assert scope.facts["os"]["name"]  # siblings survive
    assert scope.top("zone") == "z1"


def test_service_variables_shadow_facts():
    scope = build_scope(variables=["service=x"]).with_variables(service="keystone",
                                                                 machine="keystone")
    assert scope.top("service") == "keystone" and scope.top("machine") == "keystone"


def test_bad_var_is_usage_error():
    with pytest.raises(UsageError):
        build_scope(variables=["novalue"])
