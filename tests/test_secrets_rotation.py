"""The whole sample's secrets rotated: every Sensitive key in hieradata (a multi-line PEM key and a
declared ``secret_options`` ``kek`` added to keystone) gets a new value after a real run into a
scratch tree; then ``--diff``, ``--noop --diff``, ``--format json``, stderr, notes and ``render
lookup --explain`` are grepped for every old and new value, and each line of the PEM key: zero
hits. The masker never knew the old values: they are masked by their option's name."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import Tree, render

SENSITIVE = re.compile(r"::(password|secret)$")
EXTRA_DATA = "# added by test_secrets_rotation\n"
SECRETS_CONF = """[secretstore]
kek = {{ lookup('keystone::secretstore::kek') }}
max_allowed_secret_in_bytes = 20000
enabled_secretstore_plugins = store_crypto

[crypto]
private_pem = {{ lookup('keystone::tls::key') | indent(2) }}
"""
ENTRIES = """  - template: tls.key.j2
    dest: /etc/keystone/tls.key
    owner: root
    group: root
  - template: secrets.conf.j2
    dest: /etc/keystone/secrets.conf
    validate: ini
    secret_options: [kek]
"""


def pem(seed: int) -> str:
    body = base64.b64encode(os.urandom(48 * 5 + 7 + seed)).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n"


def set_extras(tree: Tree, key: str, kek: str) -> None:
    path = tree.hieradata / "data" / "services" / "keystone.yaml"
    text = path.read_text().split(EXTRA_DATA)[0]
    extra = {"lookup_options": {"keystone::tls::key": {"convert_to": "Sensitive"}},
             "keystone::tls::key": key, "keystone::secretstore::kek": kek}
    path.write_text(text + EXTRA_DATA + yaml.safe_dump(extra, width=1000))


def add_files(tree: Tree) -> None:
    directory = tree.templates / "keystone"
    (directory / "tls.key.j2").write_text("{{ lookup('keystone::tls::key') }}")
    (directory / "secrets.conf.j2").write_text(SECRETS_CONF)
    definition = directory / "service.yaml"
    text = definition.read_text()
    definition.write_text(text.replace("  - include: container", ENTRIES + "  - include: container"))


def sensitive_keys(tree: Tree) -> dict[Path, list[str]]:
    """Every top-level key a Sensitive lookup_option (``*::password``, ``*::secret``) covers."""
    found = {}
    for path in sorted((tree.hieradata / "data").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        keys = [k for k, v in data.items() if SENSITIVE.search(str(k)) and isinstance(v, str)]
        if keys:
            found[path] = keys
    return found


def rotate(tree: Tree, keys: dict[Path, list[str]], round_: int) -> list[str]:
    """A new value for each key (rewritten in place); returns every value now in use."""
    values = []
    for path, names in keys.items():
        lines = path.read_text().splitlines(keepends=True)
        for index, line in enumerate(lines):
            for key in names:
                if line.startswith(f"{key}: "):
                    value = f"R{round_}-{base64.b32encode(os.urandom(10)).decode().lower()}"
                    lines[index] = f"{key}: '{value}'\n"
                    values.append(value)
        path.write_text("".join(lines))
    return values


def hits(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.slow
def test_rotating_every_secret_prints_none(tree: Tree, systemctl):
    fake = systemctl()
    add_files(tree)
    keys = sensitive_keys(tree)
    assert sum(map(len, keys.values())) >= 20  # the sample's passwords and secrets
    old = rotate(tree, keys, 1)
    old_pem, old_kek = pem(1), "kek-0ld-" + os.urandom(8).hex()
    set_extras(tree, old_pem, old_kek)
    first = render(*fake.options, "--all", *tree.options())
    assert first.code in (0, 2), first.err
    assert "mariadb::sst::password" in {k for names in keys.values() for k in names}

    new = rotate(tree, keys, 2)
    new_pem, new_kek = pem(2), "kek-n3w-" + os.urandom(8).hex()
    set_extras(tree, new_pem, new_kek)
    pem_lines = [line for value in (old_pem, new_pem) for line in value.splitlines()
                 if not line.startswith("-----")]
    secrets = [*old, *new, old_kek, new_kek, *pem_lines]

    before = tree.snapshot(state=True)
    noop = render(*fake.options, "--all", "--noop", "--diff", *tree.options())
    as_json = render(*fake.options, "--all", "--noop", "--format", "json", *tree.options())
    assert tree.snapshot(state=True) == before
    real = render(*fake.options, "--all", "--diff", *tree.options())
    assert noop.code == 2 and real.code in (2, 6), (noop.err, real.err)
    # the rotation shows: galera.cnf's wsrep_sst_auth and keystone's kek changed, masked
    assert re.search(r"^-wsrep_sst_auth=<redacted>#[0-9a-f]{8}$", real.out, re.M), real.out
    assert re.search(r"^\+kek = <redacted>#", real.out, re.M)
    assert " max_allowed_secret_in_bytes = 20000\n" in real.out  # context: not masked
    documents = json.loads(as_json.out)
    diffs = "".join(f["diff"] for s in documents["services"] for f in s["files"])
    assert "-wsrep_sst_auth=<redacted>#" in diffs
    notes = json.dumps([s["notes"] for s in documents["services"]])

    explain = [render("lookup", "--explain", key, "--node", "controller1.example.com",
                      "--hieradata", str(tree.hieradata), "--service", service)
               for key, service in (("keystone::tls::key", "keystone"),
                                    ("mariadb::sst::password", "mariadb"),
                                    ("keystone::database::password", "keystone"))]
    assert all(e.code == 0 for e in explain), [e.err for e in explain]
    for channel in (noop.out, noop.err, as_json.out, as_json.err, real.out, real.err, notes,
                    *(e.out + e.err for e in explain)):
        assert hits(channel, secrets) == []
