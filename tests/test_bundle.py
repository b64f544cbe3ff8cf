"""Bundles (renderer.bundle): ``render bundle`` resolves every lookup on the side that has the
data; ``render --bundle FILE`` renders byte-identical files, masked alike, on a node without it.
The whole server/agent path through real ``puppet apply`` is in test_bundle_puppet.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Tree, render

from renderer import bundle
from renderer.hiera import Sensitive
from renderer.hiera.psych import Symbol

SECRETS = ("Kst0ne-db-S3cret", "Gl4nce-ks-S3cret", "N0va-db-S3cret")


def node_copy(tree: Tree, where: Path) -> Tree:
    """The same deployment before any run, without hieradata: the agent node."""
    node = Tree(where)
    shutil.copytree(tree.base, where, symlinks=True)
    shutil.rmtree(node.hieradata)
    return node


def contents(tree: Tree) -> dict[str, tuple[bytes, int]]:
    """Every rendered file, by path below its root: bytes and mode."""
    result = {}
    for top in (tree.machines, tree.host):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                result[str(path.relative_to(tree.base))] = (path.read_bytes(),
                                                           path.stat().st_mode)
    return result


def make_bundle(tree: Tree, out: Path, *extra: str) -> Path:
    result = render("bundle", "--all", "--hieradata", str(tree.hieradata), "--templates",
                    str(tree.templates), "--node", "controller1.example.com", "--output",
                    str(out), *extra)
    assert result.code == 0, result.err
    return out


def key_source(tree: Tree) -> list[str]:
    """One masking key for both deployments, so their ``<redacted>#tag`` marks compare."""
    source = tree.base.parent / "key-source"
    if not source.exists():
        source.write_bytes(os.urandom(32))
        source.chmod(0o600)
    return ["--key-source", str(source)]


def test_a_node_with_only_the_bundle_renders_what_the_data_renders(tree: Tree, tmp_path: Path):
    node = node_copy(tree, tmp_path / "node")
    made = make_bundle(tree, tmp_path / "bundle.json")
    assert oct(made.stat().st_mode & 0o777) == "0o600"
    with_data = render("--all", "--diff", *tree.options(), "--no-restart", *key_source(tree))
    assert with_data.code == 2, with_data.err
    only = render("--all", "--diff", *node.options(), "--no-restart", *key_source(tree),
                  "--bundle", str(made))
    assert only.code == 2, only.err
    assert not node.hieradata.exists()
    assert contents(node) == contents(tree) and len(contents(tree)) > 40
    # the masked diffs agree too: Sensitive values from the bundle are masked as from the data
    assert only.out.replace(str(node.base), "BASE") == with_data.out.replace(str(tree.base),
                                                                            "BASE")
    assert "<redacted>" in only.out
    assert not any(secret in only.out + only.err for secret in SECRETS)


def test_the_bundle_keeps_which_values_are_sensitive_and_ruby_shapes(tree: Tree,
                                                                    tmp_path: Path):
    document = json.loads(make_bundle(tree, tmp_path / "b.json").read_text())
    assert document["format"] == "render-bundle" and document["node"] == "controller1.example.com"
    assert len(document["hieradata"]["sha256"]) == 64 and document["render"]
    answers = document["services"]["keystone"]["answers"]
    password = answers[bundle.answer_key("lookup", "keystone::database::password", None,
                                         _scope("keystone", "keystone"))]
    assert password == {"found": True, "value": {"s": "Kst0ne-db-S3cret"}}
    value = {"a": [1, 2.5, None, Sensitive({"x": [True]})], 3: "int key", "s": Symbol("sym")}
    again = bundle.decode(json.loads(json.dumps(bundle.encode(value))))
    assert again["a"][:3] == [1, 2.5, None] and again[3] == "int key"
    assert isinstance(again["a"][3], Sensitive) and again["a"][3].value == {"x": [True]}
    assert isinstance(again["s"], Symbol) and again["s"].name == "sym"


def _scope(service: str, machine: str):
    from renderer.scope import Scope

    return Scope({}, {}, {"service": service, "machine": machine})


def test_a_lookup_the_bundle_lacks_fails_its_service_saying_run_puppet_again(tree: Tree,
                                                                            tmp_path: Path):
    made = make_bundle(tree, tmp_path / "b.json")
    document = json.loads(made.read_text())
    gone = bundle.answer_key("lookup", "keystone::database::password", None,
                             _scope("keystone", "keystone"))
    del document["services"]["keystone"]["answers"][gone]
    del document["services"]["glance"]
    made.write_text(json.dumps(document))
    result = render("keystone", "glance", "placement", *tree.options(), "--no-restart",
                    "--bundle", str(made))
    assert result.code == 6, result.out + result.err
    lines = [line for line in result.err.splitlines() if "run Puppet again" in line]
    assert len(lines) == 2, result.err
    assert "'keystone::database::password'" in lines[0] or "'keystone::database::password'" \
        in lines[1]
    assert any("has no answers for service glance" in line for line in lines)
    assert any("for service keystone" in line for line in lines)
    assert (tree.machines / "placement").exists()


@pytest.mark.parametrize("defect", ["symlink", "mode", "size", "json"])
def test_an_untrusted_bundle_is_refused(tree: Tree, tmp_path: Path, defect: str,
                                        monkeypatch: pytest.MonkeyPatch):
    made = make_bundle(tree, tmp_path / "b.json")
    path = made
    expected = {"symlink": "symlink", "mode": "mode 0640", "size": "larger than",
                "json": "not a bundle"}[defect]
    if defect == "symlink":
        path = tmp_path / "link.json"
        path.symlink_to(made)
    elif defect == "mode":
        made.chmod(0o640)
    elif defect == "size":
        monkeypatch.setattr(bundle, "MAX_BUNDLE", 100)
    else:
        made.write_text("{")
    result = render("keystone", *tree.options(), "--no-restart", "--bundle", str(path))
    assert result.code == 4, result.err
    assert expected in result.err and str(path) in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tree.machines / "keystone" / "etc" / "keystone" / "keystone.conf").exists()


def test_render_bundle_and_render_conf_name_the_bundle(tree: Tree, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    """--bundle is an ordinary option: RENDER_BUNDLE and ``bundle =`` in render.conf work."""
    made = make_bundle(tree, tmp_path / "b.json")
    shutil.rmtree(tree.hieradata)
    monkeypatch.setenv("RENDER_BUNDLE", str(made))
    assert render("keystone", *tree.options(), "--no-restart").code == 2
    monkeypatch.delenv("RENDER_BUNDLE")
    conf = tmp_path / "render.conf"
    conf.write_text(f"[render]\nbundle = {made}\n")
    assert render("placement", *tree.options(), "--no-restart", "--config", str(conf)).code == 2


def agent_identity(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key, as a Puppet agent has in its ssldir."""
    cert, key = where / "agent.pem", where / "agent-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=controller1.example.com", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_an_encrypted_bundle_holds_no_clear_value_and_opens_with_the_agent_key(
        tree: Tree, tmp_path: Path):
    cert, key = agent_identity(tmp_path)
    made = make_bundle(tree, tmp_path / "b.pem", "--encrypt-to", str(cert))
    data = made.read_bytes()
    assert data.startswith(b"-----BEGIN CMS-----")
    assert not any(s.encode() in data for s in SECRETS) and b"keystone" not in data
    node = node_copy(tree, tmp_path / "node")
    refused = render("keystone", *node.options(), "--no-restart", "--bundle", str(made))
    assert refused.code == 4 and "--bundle-key" in refused.err
    opened = render("--all", *node.options(), "--no-restart", "--bundle", str(made),
                    "--bundle-key", str(key))
    assert opened.code == 2, opened.err
    assert render("--all", *tree.options(), "--no-restart").code == 2
    assert contents(node) == contents(tree)
    (tmp_path / "other").mkdir()
    _, other = agent_identity(tmp_path / "other")
    wrong = render("keystone", *node.options(), "--no-restart", "--noop", "--bundle",
                   str(made), "--bundle-key", str(other))
    assert wrong.code == 4 and "openssl" in wrong.err
    assert len(wrong.err.strip().splitlines()) == 1


def test_a_data_error_on_the_server_fails_the_service_on_the_node_with_the_same_line(
        tree: Tree, tmp_path: Path):
    data = tree.hieradata / "data" / "services" / "keystone.yaml"
    loop = "keystone::database::name: \"%{lookup('keystone::database::name')}\"\n"
    data.write_text(data.read_text() + loop)
    made = tmp_path / "b.json"
    result = render("bundle", "keystone", "placement", "--hieradata", str(tree.hieradata),
                    "--templates", str(tree.templates), "--node", "controller1.example.com",
                    "--output", str(made))
    assert result.code == 0, result.err
    assert result.err.count("\n") == 1 and "render bundle: keystone: " in result.err
    with_data = render("keystone", "placement", *tree.options(), "--no-restart", "--noop")
    node = render("keystone", "placement", *tree.options(), "--no-restart", "--noop",
                  "--bundle", str(made))
    assert with_data.code == 6 and node.code == 6, node.err
    failed = [line for line in with_data.err.splitlines() if line.startswith("render: keystone")]
    assert failed and failed == [line for line in node.err.splitlines()
                                 if line.startswith("render: keystone")]


def test_render_list_takes_the_machines_the_data_decides_from_the_bundle(tree: Tree,
                                                                        tmp_path: Path):
    made = make_bundle(tree, tmp_path / "b.json")
    with_data = render("--list", *tree.options())
    shutil.rmtree(tree.hieradata)
    assert render("--list", *tree.options(), "--bundle", str(made)).out == with_data.out
    assert "-" not in [line.split("\t")[1] for line in with_data.out.splitlines()]


def test_an_unchanged_bundle_reuses_its_envelope_and_a_changed_one_does_not(tree: Tree,
                                                                           tmp_path: Path):
    cert, _ = agent_identity(tmp_path)
    cache = tmp_path / "cache"
    options = ("--encrypt-to", str(cert), "--envelope-cache", str(cache))
    first = make_bundle(tree, tmp_path / "1.pem", *options).read_bytes()
    assert make_bundle(tree, tmp_path / "2.pem", *options).read_bytes() == first
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    data = tree.hieradata / "data" / "credentials.yaml"
    data.write_text(data.read_text().replace("Kst0ne-db-S3cret", "Kst0ne-db-N3w"))
    changed = make_bundle(tree, tmp_path / "3.pem", *options).read_bytes()
    assert changed != first and changed.startswith(b"-----BEGIN CMS-----")
    assert make_bundle(tree, tmp_path / "4.pem", "--encrypt-to", str(cert)).read_bytes() \
        != changed  # without the cache, a fresh envelope


# --- eyaml: decrypted on the server, Sensitive in the bundle, never in clear elsewhere ---------

EYAML_SECRET = "Eyaml-Driver-S3cret"
KEYS = Path(__file__).parent / "data" / "hiera" / "eyaml"


def eyaml_level(tree: Tree, keys: Path, unreadable: bool = True) -> tuple[str, str]:
    """An eyaml level on top of the sample hierarchy, with the TEST private key copied to
    ``keys`` (the server's; the node never has it): a real PKCS7 token for a keystone key and
    one for glance that this key cannot open (made for another key pair), unless not
    ``unreadable``. The two tokens."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from eyaml_tokens import bare_key_token

    keys.mkdir(parents=True, exist_ok=True)
    private = keys / "private_key.pkcs7.pem"
    shutil.copy(KEYS / "private_key.pkcs7.pem", private)
    hiera = tree.hieradata / "hiera.yaml"
    hiera.write_text(hiera.read_text().replace(
        "hierarchy:\n", "hierarchy:\n  - name: \"Secrets\"\n    lookup_key: eyaml_lookup_key\n"
        f"    path: secrets.eyaml\n    options:\n      pkcs7_private_key: {private}\n", 1))
    token = bare_key_token(EYAML_SECRET.encode(), (KEYS / "public_key.pkcs7.pem").read_bytes())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    wrong = bare_key_token(b"Unreadable-S3cret", other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tree.hieradata / "data" / "secrets.eyaml").write_text(
        f"keystone::notification_drivers:\n  - messagingv2\n  - {token}\n" +
        (f"glance::debug: {wrong}\n" if unreadable else ""))
    return token, wrong


def test_an_eyaml_value_is_decrypted_on_the_server_and_rendered_on_a_node_without_key(
        tree: Tree, tmp_path: Path):
    token, wrong = eyaml_level(tree, tmp_path / "server-keys")
    node = node_copy(tree, tmp_path / "node")
    made = make_bundle(tree, tmp_path / "b.json")
    text = made.read_text()
    assert EYAML_SECRET in text and token[10:60] not in text and wrong[10:60] not in text
    answers = json.loads(text)["services"]["keystone"]["answers"]
    drivers = answers[bundle.answer_key("lookup", "keystone::notification_drivers", None,
                                        _scope("keystone", "keystone"))]
    assert drivers == {"found": True, "value": {"a": ["messagingv2", {"s": EYAML_SECRET}]}}
    with_data = render("--all", "--diff", *tree.options(), "--no-restart", *key_source(tree))
    assert with_data.code == 6, with_data.err  # glance fails: its token is for another key
    shutil.rmtree(tmp_path / "server-keys")  # the node has neither the data nor the key
    only = render("--all", "--diff", *node.options(), "--no-restart", *key_source(tree),
                  "--bundle", str(made))
    assert only.code == 6, only.err
    conf = node.machines / "keystone" / "etc" / "keystone" / "keystone.conf"
    assert f"driver={EYAML_SECRET}\n" in conf.read_text()
    assert contents(node) == contents(tree)
    assert "+driver=<redacted>#" in only.out
    assert only.out.replace(str(node.base), "BASE") == with_data.out.replace(str(tree.base),
                                                                            "BASE")
    failed = [line for line in only.err.splitlines() if line.startswith("render: glance")]
    assert len(failed) == 1, only.err
    assert "key 'glance::debug' in hierarchy 'Secrets' cannot be decrypted" in failed[0]
    assert failed == [line for line in with_data.err.splitlines()
                      if line.startswith("render: glance")]
    for text in (only.out + only.err, with_data.out + with_data.err):
        assert EYAML_SECRET not in text and "ENC[" not in text and "Unreadable" not in text
