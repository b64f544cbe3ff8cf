"""Unit tests for renderer.hiera: fast, no Puppet needed (conformance is in test_hiera_puppet)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from renderer.errors import (
    ConversionError,
    DigError,
    HieraConfigError,
    HieraDataError,
    HieraRecursionError,
    InterpolationError,
    KeySyntaxError,
    LookupNotFound,
    MergeError,
)
from renderer.hiera import NOT_GIVEN, Hiera, Sensitive
from renderer.hiera import data as data_module
from renderer.hiera import merge as merging
from renderer.hiera.convert import convert
from renderer.hiera.psych import Rejected, Symbol, tokenize
from renderer.hiera.ruby import NUMBER_BLANKS, STRIP, float_to_s, inspect, to_s
from renderer.scope import Scope

FACTS = {"os": {"family": "Debian"}, "role": "web", "list": ["a", "b"], "count": 3}
TRUSTED = {"certname": "node1.example.com", "hostname": "node1", "domain": "example.com"}


def scope(**variables: Any) -> Scope:
    return Scope(facts=dict(FACTS), trusted=dict(TRUSTED), variables=variables)


def tree(root: Path, files: dict[str, str], hiera: str = "version: 5\n") -> Path:
    """Write hiera.yaml and data files under ``root``; returns the hiera.yaml path."""
    (root / "hiera.yaml").write_text(textwrap.dedent(hiera))
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    return root / "hiera.yaml"


def common(root: Path, content: str) -> Hiera:
    return Hiera.load(tree(root, {"data/common.yaml": content}))


LEVELS = """\
    version: 5
    hierarchy:
      - name: node
        path: "nodes/%{trusted.certname}.yaml"
      - name: service
        path: "services/%{service}.yaml"
      - name: common
        path: common.yaml
"""


# --- API -------------------------------------------------------------------------------------

def test_not_found_raises_with_the_key_and_default_is_returned(tmp_path: Path) -> None:
    hiera = common(tmp_path, "a: 1\nnull_value: ~\n")
    assert hiera.lookup("a", scope()) == 1
    assert hiera.lookup("null_value", scope(), default="x") is None
    assert hiera.lookup("b", scope(), default=None) is None
    assert hiera.lookup("b", scope(), default=[1]) == [1]
    with pytest.raises(LookupNotFound) as caught:
        hiera.lookup("b", scope())
    assert caught.value.key == "b"
    assert str(caught.value) == "Function lookup() did not find a value for the name 'b'"
    assert repr(NOT_GIVEN) == "NOT_GIVEN"


def test_sensitive_hides_its_value() -> None:
    secret = Sensitive("hunter2")
    assert secret.value == "hunter2"
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert str(secret) == repr(secret) == "Sensitive [value redacted]"
    assert f"{[secret]}" == "[Sensitive [value redacted]]"
    assert secret == Sensitive("hunter2") and secret != Sensitive("other")


def test_convert_to_sensitive_returns_a_sensitive(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        lookup_options:
          password: {convert_to: Sensitive}
        password: hunter2
        dsn: "db://user:%{lookup('password')}@host"
    """)
    password = hiera.lookup("password", scope())
    assert isinstance(password, Sensitive) and password.value == "hunter2"
    assert hiera.lookup("dsn", scope()) == "db://user:Sensitive [value redacted]@host"


def test_hierarchy_follows_each_scope(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/nodes/node1.example.com.yaml": "port: 1\n",
        "data/services/keystone.yaml": "name: keystone\nworkers: 4\n",
        "data/services/nova.yaml": "name: nova\n",
        "data/common.yaml": "name: common\nworkers: 1\n",
    }, LEVELS))
    keystone, nova, other = scope(service="keystone"), scope(service="nova"), scope()
    assert hiera.lookup("name", keystone) == "keystone"
    assert hiera.lookup("name", nova) == "nova"
    assert hiera.lookup("name", other) == "common"
    assert hiera.lookup("workers", nova) == 1
    assert hiera.lookup("workers", keystone, merge="unique") == [4, 1]
    assert hiera.lookup("port", nova) == 1


def test_each_file_is_parsed_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/services/keystone.yaml": "a: k\n",
        "data/services/nova.yaml": "a: n\n",
        "data/common.yaml": "a: c\nb: c\n",
    }, LEVELS))
    parsed: list[str] = []
    real = data_module.load_data_file
    monkeypatch.setattr("renderer.hiera.lookup.load_data_file",
                        lambda path, *rest: parsed.append(Path(path).name) or real(path, *rest))
    for service in ("keystone", "nova", "keystone", "nova"):
        for key in ("a", "b", "nosuch"):
            hiera.lookup(key, scope(service=service), default=None)
    assert sorted(parsed) == ["common.yaml", "keystone.yaml", "nova.yaml"]


def test_lookup_options_for_a_key(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        lookup_options:
          users: {merge: deep}
          '^keystone::': {merge: unique}
          '^keystone::exact$': {merge: hash}
        users: {}
    """)
    assert hiera.lookup_options("users", scope()) == {"merge": "deep"}
    assert hiera.lookup_options("users.alice.groups", scope()) == {"merge": "deep"}
    assert hiera.lookup_options("keystone::exact", scope()) == {"merge": "unique"}
    assert hiera.lookup_options("other", scope()) == {}
    assert hiera.lookup("lookup_options", scope(), default="none") == "none"


def test_explain_reports_each_location_and_the_result(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {"data/common.yaml": "a: [1]\n",
                                       "data/services/nova.yaml": "a: [2]\n"}, LEVELS))
    events: list[tuple[str, dict]] = []
    value = hiera.lookup("a", scope(service="nova"), merge="unique",
                         explain=lambda event, details: events.append((event, details)))
    assert value == [2, 1]
    locations = [(d["level"], d["exists"], d["found"]) for e, d in events if e == "location"
                 and d["key"] == "a"]
    assert locations == [("node", False, False), ("service", True, True), ("common", True, True)]
    assert events[-1][0] == "result" and events[-1][1]["value"] == [2, 1]


# --- hiera.yaml ------------------------------------------------------------------------------

@pytest.mark.parametrize("hiera, message, line", [
    ("version: 5\nhierarchy:\n  - name: a\n    path: a.yaml\n  - name: a\n    path: b.yaml\n",
     "Hierarchy name 'a' defined more than once", 5),
    ("version: 5\nhierarchy:\n  - name: a\n    path: a.yaml\n    paths: [b.yaml]\n",
     "Only one of path, paths", 3),
    ("version: 5\nhierarchy:\n  - name: a\n    data_hash: hocon_data\n    path: a.conf\n",
     "hierarchy 'a' uses data_hash: hocon_data, a backend render cannot run", 4),
    ("version: 5\nhierarchy:\n  - name: a\n    lookup_key: vault_lookup\n    path: a.eyaml\n",
     "a backend render cannot run (it reads data_hash: yaml_data and json_data, and lookup_key: "
     "eyaml_lookup_key)", 4),
    ("version: 5\ndefaults:\n  datadir: data\nhierarchy:\n  - name: a\n    path: a.yaml\n",
     "One of data_hash, lookup_key, data_dig, hiera3_backend must be defined", 5),
    ("version: 5\nhierarchy:\n  - name: a\n    path: \"%{lookup('x')}.yaml\"\n",
     "method syntax is not allowed", 3),
    ("version: 5\nhierarchy:\n  - name: a\n    datadir: \"%{alias('x')}\"\n    path: a.yaml\n",
     "method syntax is not allowed", 3),
    ("version: 5\nhierarchy:\n  - name: a\n", "one of 'path', 'paths'", 3),
    ("version: 5\nhierarchy:\n  - name: a\n    uri: http://x\n", "one of 'path', 'paths'", 3),
    ("version: 5\nhierarchy:\n  - name: a\n    path: a.yaml\n    bogus: 1\n",
     "unknown key 'bogus'", 5),
    ("version: 5\nhierarchy:\n  - path: a.yaml\n", "'name' must be a non-empty string", 3),
    ("version: 5\nhierarchy:\n  - name: a\n    mapped_paths: [x, y]\n", "exactly 3", 4),
    ("version: 5\nhierarchy:\n  - name: a\n    path: a.yaml\n    options: {path: x}\n",
     "reserved by Puppet", 5),
    ("version: 5\ndefault_hierarchy: []\n", "only allowed in the module layer", 2),
    ("version: 5\nbackends: [yaml]\n", "unknown key 'backends'", 2),
    ("version: 4\n", "version 4 is not supported", 1),
    ("version: '5'\n", "version '5' is not supported", 1),
    (":backends: [yaml]\n", "version missing (which means 3) is not supported", 1),
    ("", "must be a hash with 'version: 5'", None),
    ("version: 5\nhierarchy: [\n", "YAML syntax error", 3),
])
def test_config_errors_name_the_file_and_line(tmp_path: Path, hiera: str, message: str,
                                              line: int | None) -> None:
    path = tree(tmp_path, {}, hiera)
    with pytest.raises(HieraConfigError) as caught:
        Hiera.load(path)
    assert message in caught.value.message
    assert caught.value.path == str(path)
    assert caught.value.line == line


def test_missing_hiera_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(HieraConfigError) as caught:
        Hiera.load(tmp_path / "hiera.yaml")
    assert caught.value.path == str(tmp_path / "hiera.yaml")


def test_version_only_reads_data_common(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {"data/common.yaml": "a: 1\n", "data/other.yaml": "b: 2\n"}))
    assert hiera.lookup("a", scope()) == 1
    assert hiera.lookup("b", scope(), default=None) is None


def test_globs_mapped_paths_and_datadirs(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/conf.d/b.yaml": "x: [b]\n", "data/conf.d/a.yaml": "x: [a]\n",
        "data/roles/web.yaml": "x: [web]\n", "data/roles/db.yaml": "x: [db]\n",
        "other/common.yaml": "x: [common]\n",
    }, """\
        version: 5
        hierarchy:
          - {name: glob, glob: "conf.d/*.yaml"}
          - {name: mapped, mapped_paths: [roles, r, "roles/%{r}.yaml"]}
          - {name: common, datadir: other, path: common.yaml}
    """))
    roles = Scope(facts={"roles": ["db", "web"]}, trusted={}, variables={})
    assert hiera.lookup("x", roles, merge="unique") == ["a", "b", "db", "web", "common"]


def test_mapped_paths_element_is_seen_by_its_template_only(tmp_path: Path) -> None:
    """The element shadows a top-scope variable of the same name in the template, but not as
    ``::r``, not in the next level's path and not in the data."""
    hiera = Hiera.load(tree(tmp_path, {
        "data/roles/db.yaml": "x: [db]\n", "data/top/top.yaml": "x: [top]\n",
        "data/common.yaml": "x: [common]\ny: '%{r}'\n",
    }, """\
        version: 5
        hierarchy:
          - {name: mapped, mapped_paths: [roles, r, "%{::r}/%{r}.yaml"]}
          - {name: after, path: "top/%{r}.yaml"}
          - {name: common, path: common.yaml}
    """))
    both = Scope(facts={}, trusted={}, variables={"roles": ["db"], "r": "top"})
    assert hiera.lookup("x", both, merge="unique") == ["top", "common"]
    assert hiera.lookup("y", both) == "top"
    only = Scope(facts={}, trusted={}, variables={"roles": ["roles", "db"], "r": "roles"})
    assert hiera.lookup("x", only, merge="unique") == ["db", "common"]


# --- data files ------------------------------------------------------------------------------

def test_yaml_syntax_error_has_file_line_and_column(tmp_path: Path) -> None:
    hiera = common(tmp_path, "a: 1\nb: [unclosed\nc: 2\n")
    with pytest.raises(HieraDataError) as caught:
        hiera.lookup("a", scope())
    error = caught.value
    assert error.path == str(tmp_path / "data" / "common.yaml")
    assert (error.line, error.column) == (3, 2)
    assert str(error).startswith(f"{error.path}:3:2: YAML syntax error")


@pytest.mark.parametrize("text, line", [
    ("a: 1\nwhen: 2024-01-31\n", 2),
    ("a: 1\nlist:\n  - ok\n  - 2024-01-31 10:00:00\n", 4),
    ("a: !!timestamp 2024-01-31\n", 1),
])
def test_unquoted_dates_reject_the_file(tmp_path: Path, text: str, line: int) -> None:
    hiera = common(tmp_path, text)
    with pytest.raises(HieraDataError) as caught:
        hiera.lookup("a", scope())
    assert caught.value.line == line
    assert "quote it" in caught.value.message or "not allowed" in caught.value.message


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "common.yaml").write_bytes(b"a: 1\nb: \xff\n")
    hiera = Hiera.load(tree(tmp_path, {}))
    with pytest.raises(HieraDataError) as caught:
        hiera.lookup("a", scope())
    assert caught.value.line == 2


@pytest.mark.parametrize("content", ["", "# comment only\n", "~\n", "- a\n- b\n", "text\n",
                                     "false\n"])
def test_empty_and_non_hash_files_count_as_empty(tmp_path: Path, content: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    hiera = Hiera.load(tree(tmp_path, {"data/empty.yaml": content, "data/common.yaml": "a: 1\n"},
                            """\
        version: 5
        hierarchy:
          - {name: empty, path: empty.yaml}
          - {name: common, path: common.yaml}
    """))
    with caplog.at_level(logging.WARNING, logger="renderer.hiera"):
        assert hiera.lookup("a", scope()) == 1
    assert "does not contain a valid yaml hash" in caplog.text


def test_symbol_values_are_rejected_per_key(tmp_path: Path) -> None:
    hiera = common(tmp_path, "bad: :sym\nok: :default\n:key: symbol key\n")
    assert hiera.lookup("ok", scope()) == "default"
    assert hiera.lookup("key", scope()) == "symbol key"
    with pytest.raises(HieraDataError, match="Symbol"):
        hiera.lookup("bad", scope())


@pytest.mark.parametrize("text, value", [
    ("yes", True), ("Off", False), ("TrUe", True), ("y", "y"), ("nULL", None), ("~", None),
    ("0755", 493), ("0x1F", 31), ("0b101", 5), ("1_000", 1000), ("1,000", 1000), ("08", "08"),
    ("12:30:00", 45000), ("-12:30", -41400), ("1.5", 1.5), ("1.", 1.0), ("1e3", "1e3"),
    ("1.0e+3", 1000.0), ("0o17", "0o17"), ("=", "="), ("<<", "<<"), (".", "."),
    ("long yes string", "long yes string"),
])
def test_plain_scalars_are_typed_like_psych(text: str, value: Any) -> None:
    result = tokenize(text)
    assert result == value and type(result) is type(value)


def test_psych_special_scalars() -> None:
    assert tokenize(".INF") == float("inf") and tokenize("-.inf") == float("-inf")
    assert tokenize(":name").name == "name" and isinstance(tokenize(':"a b"'), Symbol)
    with pytest.raises(Rejected):
        tokenize("2001-02-30")


def test_yaml_merge_keys_follow_psych(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        base: &base {x: 1, y: 1}
        over: {x: 0, <<: *base, y: 2}
        many: {<<: [{a: 1}, {a: 2, b: 2}]}
    """)
    assert hiera.lookup("over", scope()) == {"x": 1, "y": 2}
    assert hiera.lookup("many", scope()) == {"a": 1, "b": 2}


# --- interpolation ---------------------------------------------------------------------------

def test_interpolation_sources_and_formatting(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    hiera = common(tmp_path, """\
        family: "%{facts.os.family}/%{facts.'os'.family}/%{::role}/%{role}/%{scope('role')}"
        node: "%{trusted.certname}"
        var: "%{service}"
        missing: "[%{facts.nope}][%{nope}]"
        formatted: "%{facts.list} %{facts.count} %{facts.os}"
        literal: "%{literal('%')}{x}"
        empty: "a%{}b%{::}c%{''}d"
        unclosed: "50%{ off"
        keys: {"%{role}_key": v}
        "%{role}": top-level keys stay literal
    """)
    s = scope(service="keystone")
    with caplog.at_level(logging.WARNING, logger="renderer.hiera"):
        assert hiera.lookup("family", s) == "Debian/Debian/web/web/web"
        assert hiera.lookup("missing", s) == "[][]"
    assert "Undefined variable 'nope'" in caplog.text
    assert hiera.lookup("node", s) == "node1.example.com"
    assert hiera.lookup("var", s) == "keystone"
    assert hiera.lookup("formatted", s) == '["a", "b"] 3 {"family"=>"Debian"}'
    assert hiera.lookup("literal", s) == "%{x}"
    assert hiera.lookup("empty", s) == "abcd"
    assert hiera.lookup("unclosed", s) == "50%{ off"
    assert hiera.lookup("keys", s) == {"web_key": "v"}


def test_interpolated_lookups_and_alias(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        servers: [a, b]
        port: 8080
        url: "http://%{lookup('servers.0')}:%{hiera('port')}/%{lookup('nosuch')}"
        copy: "%{alias('servers')}"
        port_copy: "%{alias('port')}"
        nested: ["%{alias('servers')}", c]
        not_alone: "x%{alias('servers')}"
    """)
    s = scope()
    assert hiera.lookup("url", s) == "http://a:8080/"
    assert hiera.lookup("copy", s) == ["a", "b"]
    assert hiera.lookup("port_copy", s) == 8080
    assert hiera.lookup("nested", s) == [["a", "b"], "c"]
    with pytest.raises(InterpolationError, match="entire string"):
        hiera.lookup("not_alone", s)


@pytest.mark.parametrize("value, error, message", [
    ("\"%{lookup('b')}\"\nb: \"%{lookup('a')}\"", HieraRecursionError,
     "Recursive lookup detected in [a, b]"),
    ("\"%{lookup('a')}\"", HieraRecursionError, "Recursive lookup detected in [a]"),
    ("\"%{nosuch('x')}\"", InterpolationError, "Unknown interpolation method 'nosuch'"),
    ("\"%{lookup( 'x' )}\"", InterpolationError, "Syntax error in string"),
    ("\"%{facts.role.x}\"", DigError, "Got String"),
])
def test_interpolation_errors(tmp_path: Path, value: str, error: type, message: str) -> None:
    hiera = common(tmp_path, f"a: {value}\n")
    with pytest.raises(error) as caught:
        hiera.lookup("a", scope())
    assert message in str(caught.value)


# --- keys, merges, conversions ---------------------------------------------------------------

def test_dotted_keys(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        h: {list: [zero, {one: 1}], "a.b": dotted, s: text}
    """)
    s = scope()
    assert hiera.lookup("h.list.1.one", s) == 1
    assert hiera.lookup("h.'a.b'", s) == "dotted"
    assert hiera.lookup("h.list.5", s, default="none") == "none"
    with pytest.raises(DigError):
        hiera.lookup("h.s.x", s)
    with pytest.raises(DigError):
        hiera.lookup("h.list.x", s)
    for bad in ("h.", "a..b", ".a"):
        with pytest.raises(KeySyntaxError):
            hiera.lookup(bad, s)


def test_merge_strategies_from_lookup_options_and_explicit(tmp_path: Path) -> None:
    hiera = Hiera.load(tree(tmp_path, {
        "data/high.yaml": "lookup_options:\n  users: {merge: deep}\n"
                          "users: {bob: {groups: [ops]}}\nlist: [c, a]\n",
        "data/low.yaml": "users: {bob: {groups: [dev], uid: 1}, eve: {}}\nlist: [a, b]\n",
    }, """\
        version: 5
        hierarchy:
          - {name: high, path: high.yaml}
          - {name: low, path: low.yaml}
    """))
    s = scope()
    assert hiera.lookup("users", s) == {"bob": {"groups": ["dev", "ops"], "uid": 1}, "eve": {}}
    assert hiera.lookup("users", s, merge="first") == {"bob": {"groups": ["ops"]}}
    assert hiera.lookup("list", s, merge="unique") == ["c", "a", "b"]
    assert hiera.lookup("list", s, merge={"strategy": "deep"}) == ["a", "b", "c"]
    with pytest.raises(MergeError):
        hiera.lookup("list", s, merge="hash")
    with pytest.raises(MergeError, match="Unknown merge strategy"):
        hiera.lookup("list", s, merge="nosuch")


@pytest.mark.parametrize("merge, higher, lower, expected", [
    ("deep", {"a": None, "b": ""}, {"a": 1, "b": 2}, {"a": 1, "b": ""}),
    ("deep", {"k": [1]}, {"k": {"x": 1}}, {"k": [1]}),
    ({"strategy": "deep", "knockout_prefix": "--"}, ["--a", "c"], ["a", "b"], ["b", "c"]),
    ({"strategy": "deep", "knockout_prefix": "--"}, ["--", "c"], ["a", "b"], ["c"]),
    ({"strategy": "deep", "knockout_prefix": "--"}, {"a": "--x"}, {"a": 1}, {"a": ""}),
    ({"strategy": "deep", "sort_merged_arrays": True}, ["b"], ["c", "a"], ["a", "b", "c"]),
    ({"strategy": "deep", "merge_hash_arrays": True}, [{"a": 1}], [{"b": 2}, {"c": 3}],
     [{"b": 2, "a": 1}, {"c": 3}]),
    ("unique", [1, [2, 1]], [3, 1.0], [1, 2, 3, 1.0]),
    ("hash", {"b": 1, "a": 1}, {"a": 2, "c": 2}, {"a": 1, "c": 2, "b": 1}),
])
def test_merge_rules(merge: Any, higher: Any, lower: Any, expected: Any) -> None:
    assert merging.strategy(merge).merge(higher, lower) == expected


def test_sorting_mixed_types_fails() -> None:
    with pytest.raises(MergeError, match="comparison of String with Integer failed"):
        merging.strategy({"strategy": "deep", "sort_merged_arrays": True}).merge(["a"], [1])


@pytest.mark.parametrize("convert_to, value, expected", [
    ("Integer", "5000", 5000), ("Integer", "0755", 493), ("Integer", "- 5", -5),
    ("Integer", 3.9, 3), (["Integer", 16], "17", 23), ("Float", "017", 17.0),
    ("Numeric", "017", 15), ("Numeric", "1e3", 1000.0), ("Boolean", "Yes", True),
    ("Boolean", 0, False), ("Array", "ab", ["a", "b"]), (["Array", True], "ab", ["ab"]),
    ("Array", {"a": 1}, [["a", 1]]), ("Hash", [["a", 1]], {"a": 1}), ("Hash", ["a", 1], {"a": 1}),
    ("String", 1.5, "1.500000"), ("String", None, ""),
    ("String", ["a", None, 1.5, {"k": "it's"}], "['a', undef, 1.5, {'k' => 'it\\'s'}]"),
    (["String", "%x"], 255, "ff"), (["String", "%#o"], 8, "010"), (["String", "%x"], -5, "..fb"),
    (["String", "%08.3f"], 3.14159, "0003.142"), (["String", "%y"], False, "no"),
    ("Integer[0, 10]", "5", 5), ("Optional[Integer]", "7", 7), ("Data", "x", "x"),
])
def test_convert_to(convert_to: Any, value: Any, expected: Any) -> None:
    result = convert(value, convert_to, "key")
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("convert_to, value", [
    ("Integer", "08"), ("Integer", "1_000"), ("Float", "0"), ("Boolean", ""),
    ("Array", 1.5), ("Hash", ["a"]), ("Timestamp", "x"), ("not a type", 1), (["String", "%x"], "1"),
    (["String", "%-6d|"], 1), ("Integer[0, 10]", "50"), ("Array[Integer]", ["1"]), ("Undef", 1),
])
def test_failed_conversions_are_errors(convert_to: Any, value: Any) -> None:
    with pytest.raises(ConversionError):
        convert(value, convert_to, "key")


# --- Ruby formatting -------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (1e14, "100000000000000.0"), (1e15, "1.0e+15"), (1.234567890123456e15, "1.234567890123456e+15"),
    (123456789012345.6, "123456789012345.6"), (0.0001, "0.0001"), (1e-05, "1.0e-05"),
    (2.5e-05, "2.5e-05"), (-0.0, "-0.0"), (0.0, "0.0"), (5e-324, "5.0e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (100.0, "100.0"), (0.25, "0.25"),
    (float("inf"), "Infinity"), (float("nan"), "NaN"),
])
def test_float_to_s_matches_ruby(value: float, text: str) -> None:
    assert float_to_s(value) == text


def test_ruby_inspect_and_to_s() -> None:
    assert to_s([1, "a", None, True, 1.5, {"k": [2]}]) == '[1, "a", nil, true, 1.5, {"k"=>[2]}]'
    assert inspect('q"\\\n\t#{x}\x01\x7fé') == '"q\\"\\\\\\n\\t\\#{x}\\u0001\\u007Fé"'
    assert to_s(None) == "" and to_s(False) == "false" and to_s(Sensitive(1)) == \
        "Sensitive [value redacted]"


def test_ruby_blanks() -> None:
    """Ruby 3.1 (Puppet 7's): ``"\\0 a \\0".strip`` is ``"a"``; ``Integer("\\v12\\f")`` is 12
    but ``Integer("12\\0")`` fails. Conformance: the ruby_whitespace case."""
    assert "\0 \t\n\v\f\ra b\r\f\v\n\t \0".strip(STRIP) == "a b"
    assert "\v 12\f".strip(NUMBER_BLANKS) == "12" and "12\0".strip(NUMBER_BLANKS) == "12\0"


def test_nul_is_blank_around_expressions_and_key_segments(tmp_path: Path) -> None:
    hiera = common(tmp_path, """\
        lookup_options:
          n: {convert_to: Integer}
        a: "%{\\0facts.role\\0}"
        b: "%{\\0 \\0}"
        x: {y: 1}
        n: " 12\\0"
    """)
    assert hiera.lookup("a", scope()) == "web" and hiera.lookup("b", scope()) == ""
    assert hiera.lookup("x.\0y\0", scope()) == 1 and hiera.lookup("\0x\0.y", scope()) == 1
    with pytest.raises(ConversionError):
        hiera.lookup("n", scope())


# --- import cost ---------------------------------------------------------------------------

def test_import_stays_light() -> None:
    """The CLI imports this on every run; keep heavy or rarely needed modules out of it."""
    code = ("import sys, renderer.hiera; print(' '.join(m for m in ('glob', 'unicodedata', "
            "'json', 'decimal', 'jinja2', 'renderer.hiera.convert') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, check=True)
    assert result.stdout.strip() == ""
