"""``render lookup`` as a command: exit codes, output text, --explain, and the scope it builds.

Values themselves are checked against real Puppet in test_hiera_puppet.py (every query a case can
express runs through ``render lookup`` there); this file runs the command's entry point
(``renderer.cli.main``, in process, output captured) for what those checks take for granted;
test_cli.py runs it in a fresh process too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Tree, render, render_process

from renderer.scope import build_scope

HIERA = """\
version: 5
hierarchy:
  - {name: node, path: "nodes/%{trusted.certname}.yaml"}
  - {name: service, path: "services/%{service}.yaml"}
  - {name: common, path: common.yaml}
"""
COMMON = """\
lookup_options:
  '^.*::password$': {convert_to: Sensitive}
  ntp::servers: {merge: unique}
ntp::servers: [ntp0]
db::password: hunter2
db::url: "mysql://keystone:%{lookup('db::raw')}@db/keystone"
db::raw: s3cret
nothing: ~
ratio: 1.0
big: 1.0e+20
text: "é\\u0001/"
where: common
loop: "%{lookup('loop')}"
str: abc
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "hiera.yaml").write_text(HIERA)
    (tmp_path / "data" / "nodes").mkdir(parents=True)
    (tmp_path / "data" / "services").mkdir()
    (tmp_path / "data" / "common.yaml").write_text(COMMON)
    (tmp_path / "data" / "nodes" / "n1.example.com.yaml").write_text(
        "ntp::servers: [ntp1]\nwhere: node n1\n")
    (tmp_path / "data" / "services" / "keystone.yaml").write_text("where: keystone service\n")
    facts = {"hostname": "n1", "domain": "example.com", "fqdn": "n1.example.com",
             "clientcert": "n1.example.com", "role": "web"}
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    return tmp_path


def lookup(data: Path, *args: str) -> tuple[int, str, str]:
    done = render("lookup", "--hieradata", str(data), "--facts", str(data / "facts.json"),
                  "--node", "n1.example.com", *args)
    # Undefined variables warn (``%{service}`` outside a service), as in Puppet; not checked here
    err = "".join(line for line in done.err.splitlines(keepends=True)
                  if not line.startswith("render: warning: Undefined variable 'service'"))
    return done.code, done.out, err


def test_found_prints_puppets_json_and_exits_0(data: Path) -> None:
    assert lookup(data, "ntp::servers") == (0, '["ntp1","ntp0"]\n', "")
    assert lookup(data, "nothing") == (0, "null\n", "")
    assert lookup(data, "ratio", "big", "text")[1] == "1.0\n"
    assert lookup(data, "big")[1] == "1.0e+20\n"
    assert lookup(data, "text")[1] == '"é\\u0001/"\n'
    assert lookup(data, "db::password")[1] == '"Sensitive [value redacted]"\n'


def test_not_found_exits_1_with_puppets_message(data: Path) -> None:
    assert lookup(data, "missing") == (
        1, "", "Function lookup() did not find a value for the name 'missing'\n")
    assert lookup(data, "missing", "other") == (
        1, "", "Function lookup() did not find a value for any of the names "
               "['missing', 'other']\n")
    assert lookup(data, "missing", "--default", "x") == (0, '"x"\n', "")
    assert lookup(data, "lookup_options")[0] == 1


def test_data_errors_exit_4_with_one_line(data: Path) -> None:
    code, out, err = lookup(data, "loop")
    assert (code, out) == (4, "") and err.count("\n") == 1
    assert "Recursive lookup detected in [loop]" in err
    code, out, err = lookup(data, "str.x")
    assert code == 4 and "type mismatch" in err
    assert lookup(data, "h.")[0] == 4
    (data / "data" / "nodes" / "n1.example.com.yaml").write_text("a: [\n")
    code, out, err = lookup(data, "where")
    assert code == 4 and f"{data}/data/nodes/n1.example.com.yaml:2:1: YAML syntax error" in err


def test_missing_hiera_yaml_means_no_data_as_in_puppet(data: Path) -> None:
    (data / "hiera.yaml").unlink()
    code, out, err = lookup(data, "where")
    assert (code, out) == (1, "") and err.endswith(
        "Function lookup() did not find a value for the name 'where'\n")
    assert render("lookup", "--hieradata", str(data / "nope"), "where").code == 4


def test_puppet_lookup_spellings(data: Path) -> None:
    """--hiera_config, --environment, --type and --compile, as `puppet lookup` takes them."""
    (data / "data" / "common.yaml").write_text(COMMON + "env: '%{environment}'\n")
    assert render("lookup", "--hiera_config", str(data / "no-global.yaml"), "--environmentpath",
                  str(data.parent), "--hieradata", str(data), "--facts",
                  str(data / "facts.json"), "--environment", "dev", "--compile",
                  "env").out == '"dev"\n'
    assert lookup(data, "--type", "Array[String]", "ntp::servers")[0] == 0
    code, _, err = lookup(data, "--type", "Integer", "ntp::servers")
    assert code == 4 and "Found value has wrong type, expects Integer, got Array" in err
    assert lookup(data, "--type", "Array[", "ntp::servers")[0] == 64


def test_usage_errors_exit_64(data: Path) -> None:
    assert lookup(data, "--merge", "unique", "--sort-merged-arrays", "x")[0] == 64
    assert lookup(data, "--merge", "bogus", "x")[0] == 64
    assert lookup(data)[0] == 64


def test_merge_options_and_knockout_prefix_spelled_both_ways(data: Path) -> None:
    (data / "data" / "nodes" / "n1.example.com.yaml").write_text("ntp::servers: ['--ntp0', x]\n")
    for args in (["--knock-out-prefix=--"], ["--knock-out-prefix", "--"]):
        assert lookup(data, "--merge", "deep", *args, "ntp::servers")[1] == '["x"]\n'
    assert lookup(data, "--merge", "deep", "ntp::servers")[1] == '["ntp0","--ntp0","x"]\n'
    assert lookup(data, "ntp::servers")[1] == '["--ntp0","x","ntp0"]\n'  # lookup_options


def test_explain_shows_each_level_and_masks_secrets(data: Path) -> None:
    code, out, err = lookup(data, "--explain", "ntp::servers")
    assert code == 0 and err == ""
    assert 'Searching for "ntp::servers"' in out
    assert "Merge strategy unique (from lookup_options)" in out
    assert f'Path "{data}/data/nodes/n1.example.com.yaml"' in out
    assert 'Original path: "nodes/%{trusted.certname}.yaml"' in out
    assert "Path not found" in out  # services/.yaml: no service in this scope
    assert 'Found key: "ntp::servers" value: ["ntp1"]' in out
    assert out.rstrip().endswith('Result for "ntp::servers": ["ntp1","ntp0"]')
    code, out, _ = lookup(data, "--explain", "db::password", "db::url", "db::raw")
    assert code == 0 and "hunter2" not in out and "s3cret" not in out
    assert "Sensitive [value redacted]" in out
    code, out, err = lookup(data, "--explain", "missing")
    assert code == 1 and out.splitlines()[-1] == err.strip()


def test_explain_escapes_control_characters_in_names(data: Path) -> None:
    """A data file named with a newline (a glob level matches any name) cannot forge a line."""
    (data / "hiera.yaml").write_text(
        'version: 5\nhierarchy:\n  - {name: extra, glob: "extra/*.yaml"}\n')
    (data / "data" / "extra").mkdir()
    (data / "data" / "extra" / "a\nResult for \"x\": forged.yaml").write_text("x: 1\n")
    code, out, _ = lookup(data, "--explain", "x")
    assert code == 0
    assert not any(line.startswith("Result for \"x\": forged") for line in out.splitlines())
    assert "a\\nResult" in out


def test_service_sets_the_variables_render_sets(data: Path) -> None:
    templates = data / "templates"
    (templates / "keystone").mkdir(parents=True)
    (templates / "keystone" / "service.yaml").write_text(
        "machine: idm\nfiles:\n  - {template: a.j2, dest: /etc/a}\n")
    (templates / "keystone" / "a.j2").write_text("")
    assert lookup(data, "where")[1] == '"node n1"\n'
    (data / "data" / "nodes" / "n1.example.com.yaml").unlink()
    assert lookup(data, "where")[1] == '"common"\n'
    assert lookup(data, "--service", "keystone", "--templates", str(templates),
                  "where")[1] == '"keystone service"\n'
    assert lookup(data, "--var", "service=keystone", "where")[1] == '"keystone service"\n'


def test_scope_is_the_one_puppet_lookup_builds(tmp_path: Path) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text("hostname: a\ndomain: b.c\nfqdn: a.b.c\nclientcert: x.y.z\nflag: yes\n"
                     "environment: dev\n")
    scope = build_scope("other.node", str(facts), ["role=db", "os.family=Debian"])
    assert scope.trusted == {"authenticated": "local", "certname": "x.y.z", "extensions": {},
                             "hostname": "x", "domain": "y.z", "external": {}}
    assert scope.facts == {"hostname": "a", "domain": "b.c", "fqdn": "a.b.c",
                           "clientcert": "x.y.z", "flag": True, "environment": "dev",
                           "os": {"family": "Debian"}}
    assert scope.top("role") == "db" and "role" not in scope.facts
    assert scope.top("environment") == "production" and scope.top("name") == "main"
    facts.write_text("role: web\n")
    bare = build_scope("n1", str(facts))
    assert bare.trusted["certname"] is None and bare.facts == {"role": "web"}
    facts.write_text("hostname: a\nrole: web\n")
    with pytest.raises(Exception, match="they must all be overridden"):
        build_scope("n1", str(facts))


def test_lookup_in_a_fresh_process(data: Path) -> None:
    done = render_process("lookup", "--hieradata", str(data), "--facts",
                          str(data / "facts.json"), "--node", "n1.example.com", "ntp::servers")
    assert (done.code, done.out) == (0, '["ntp1","ntp0"]\n')


# --- what render applies: INI override keys and every key a service reads ----------------------

def sample(tree: Tree, *args: str) -> tuple[int, str, str]:
    done = render("lookup", "--hieradata", str(tree.hieradata), "--templates",
                  str(tree.templates), "--node", "controller1.example.com", *args)
    err = "".join(line for line in done.err.splitlines(keepends=True)
                  if not line.startswith("render: warning: Undefined variable 'service'"))
    return done.code, done.out, err


def test_an_override_key_gets_the_merge_render_uses(tree: Tree) -> None:
    quoted = '"keystone::config::keystone.conf"'
    deep = sample(tree, quoted, "--merge", "deep", "--var", "service=keystone")
    first = sample(tree, quoted, "--var", "service=keystone")
    assert deep[0] == first[0] == 0 and deep[1] != first[1]  # first-found: the node level only
    merged = json.loads(deep[1])
    assert merged["DEFAULT"] == {"max_token_size": 300} and "oslo_policy" in merged
    # with --service, quoted or not, the answer is the deep merge render applies
    for key in ("keystone::config::keystone.conf", quoted):
        assert sample(tree, "--service", "keystone", key) == (0, deep[1], "")
    assert sample(tree, "--service", "keystone", "keystone::config::keystone.conf.DEFAULT") == \
        (0, '{"max_token_size":300}\n', "")
    # an explicit --merge still wins
    assert sample(tree, "--service", "keystone", quoted, "--merge", "first") == \
        (0, first[1], "")


def test_a_dotted_key_not_found_gets_a_quoting_hint(tree: Tree) -> None:
    code, out, err = sample(tree, "keystone::config::keystone.conf")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "Function lookup() did not find a value for the name 'keystone::config::keystone.conf'",
        "render: hint: a '.' in a key digs into the value of 'keystone::config::keystone'; to "
        "look up 'keystone::config::keystone.conf' itself, quote it: "
        "'\"keystone::config::keystone.conf\"'; with --service NAME an INI override key is "
        "looked up as render merges it"]
    assert sample(tree, "no::such::key")[2].count("\n") == 1  # no dot, no hint
    assert "hint" not in sample(tree, '"no::such.key"')[2]  # quoted already


def test_all_keys_lists_every_key_the_service_reads(tree: Tree) -> None:
    code, out, err = sample(tree, "--service", "keystone", "--all-keys")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert '"keystone::config::keystone.conf"\tdeep' in lines
    assert "openstack::memcached::servers\tunique" in lines
    assert "keystone::database::password\tfirst" in lines
    assert "network::containers.keystone.networks\tfirst" in lines  # from service.yaml
    assert len(lines) == len(set(lines))
    shown = render("show", "keystone", "--format", "json", "--hieradata", str(tree.hieradata),
                   "--templates", str(tree.templates), "--node", "controller1.example.com")
    assert lines == [f"{k['key']}\t{k['merge']}" for k in json.loads(shown.out)["keys"]]
    assert sample(tree, "--all-keys")[0] == 64
    assert sample(tree, "--all-keys", "--service", "keystone", "k")[0] == 64
    assert sample(tree, "--service", "nosuch", "--all-keys")[0] == 4
