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
CRYPT_KEYS = {"container::root::password"}  # every container's /etc/shadow
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
    definition.write_text(text.replace("  - include: container",
                                       ENTRIES + "  - include: container"))


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
                    if key in CRYPT_KEYS:  # render refuses a value that is not a crypt hash
                        value = f"$6$R{round_}salt${value.replace('-', '.')}{'x' * 60}"
                    lines[index] = f"{key}: '{value}'\n"
                    values.append(value)
        path.write_text("".join(lines))
    return values


def metadata_secret_changes(diff: str) -> set[str]:
    """The files whose diff replaces metadata_proxy_shared_secret, after asserting that every
    replacement has the same masked old and new values (one value in the data)."""
    files, pairs, path = set(), set(), ""
    for match in re.finditer(r"^\+\+\+ \S+?/(machines/\S+)$|^-metadata_proxy_shared_secret="
                             r"(<redacted>#\w+)\n\+metadata_proxy_shared_secret=(<redacted>#\w+)$",
                             diff, re.M):
        if match[1]:
            path = match[1]
        else:
            files.add(path)
            pairs.add((match[2], match[3]))
    assert len(pairs) == 1 and len(set(*pairs)) == 2, pairs
    return files


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
    names = {k for names in keys.values() for k in names}
    assert {"mariadb::sst::password", "swift::hash_path_prefix::secret",
            "swift::hash_path_suffix::secret", "ironic::database::password",
            "murano::rabbitmq::password"} <= names
    assert {"glance::ceph::secret", "cinder::ceph::secret", "nova::ceph::secret"} <= names

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
    # swift.conf's hash path prefix and suffix: secret by secret_options, not by their names
    for option in ("swift_hash_path_prefix", "swift_hash_path_suffix"):
        assert re.search(rf"^-{option} = <redacted>#[0-9a-f]{{8}}$", real.out, re.M), option
        assert re.search(rf"^\+{option} = <redacted>#[0-9a-f]{{8}}$", real.out, re.M), option
    # the cephx keys of the keyrings (secret: true files) too
    for client in ("glance", "cinder", "nova"):
        assert f" [client.{client}]\n" in real.out, real.out
    assert len(re.findall(r"^[-+]key = <redacted>#[0-9a-f]{8}$", real.out, re.M)) == 6
    # neutron::metadata::secret is one value in two services' files: both change, masked alike
    assert metadata_secret_changes(real.out) == {
        "machines/nova-api/etc/nova/nova.conf", "machines/nova-control/etc/nova/nova.conf",
        "machines/neutron-agents/etc/neutron/metadata_agent.ini"}
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
    # the root hash is in each container's shadow, and never in the state dir: no record or
    # kept version holds it (renderer.apply keeps no copy of shadow)
    hashes = [v for v in (*old, *new) if v.startswith("$6$")]
    assert len(hashes) == 2 and hashes[1] in (tree.machines / "keystone/etc/shadow").read_text()
    state = b"".join(p.read_bytes() for p in tree.state.rglob("*") if p.is_file())
    assert [h for h in hashes if h.encode() in state] == []
    assert re.search(r"^# password of root changed \(not shown\)$", real.out, re.M)


# --- each rule, on a small synthetic service --------------------------------------------------

SENSITIVE_DATA = {"lookup_options": {"^.*::password$": {"convert_to": "Sensitive"}}}


def one_file(scratch, text: str, data: dict, **entry):
    return scratch({"svc": [{"dest": "/etc/app/app.ini", "text": text, **entry}]},
                   data={**SENSITIVE_DATA, **data})


def state_text(synth) -> str:
    return (synth.state / "services" / "svc.json").read_text()


def test_a_secret_option_that_disappears_is_masked_from_the_record(scratch):
    synth = one_file(scratch, "[a]\nauth_blob = {{ lookup('svc::password') }}\nother = 1\n",
                     {"svc::password": "old-pw-1234"})
    assert render("svc", *synth.options()).code == 2
    assert '"a.auth_blob"' in state_text(synth) and "old-pw-1234" not in state_text(synth)
    (synth.templates / "svc" / "f0.j2").write_text("[a]\nother = 2\n")
    for noop in (["--noop"], []):
        result = render("svc", *synth.options(), "--diff", *noop)
        assert result.code == 2, result.err
        assert re.search(r"^-auth_blob = <redacted>#[0-9a-f]{8}$", result.out, re.M), result.out
        assert "old-pw-1234" not in result.out + result.err
    assert "secret_options" not in state_text(synth)  # nothing secret is left in the file
    result = render("svc", *synth.options(), "--diff")
    assert result.code == 0


def test_rotation_masks_the_old_value_by_its_option(scratch):
    synth = one_file(scratch, "[a]\nwsrep_blob = user:{{ lookup('svc::password') }}\n",
                     {"svc::password": "old-pw-1234"})
    assert render("svc", *synth.options()).code == 2
    synth.set_data({**SENSITIVE_DATA, "svc::password": "new-pw-5678"})
    result = render("svc", *synth.options(), "--noop", "--format", "json")
    diff = json.loads(result.out)["services"][0]["files"][0]["diff"]
    assert re.search(r"^-wsrep_blob = <redacted>#", diff, re.M), diff
    assert "old-pw" not in result.out and "new-pw" not in result.out


def test_secret_true_masks_every_value_and_keeps_mode_0640(scratch):
    synth = one_file(scratch, "[db]\nhost = db1.example\nport = 3306\n# comment\n", {},
                     secret=True)
    result = render("svc", *synth.options(), "--diff")
    assert result.code == 2
    assert "db1.example" not in result.out and "3306" not in result.out
    assert "+[db]\n" in result.out and re.search(r"^\+host = <redacted>#", result.out, re.M)
    assert (synth.rootfs("svc") / "etc/app/app.ini").stat().st_mode & 0o777 == 0o640


def test_declared_secret_options_are_masked_on_both_sides(scratch):
    synth = one_file(scratch, "[crypto]\nkek = {{ lookup('svc::kek') }}\nmax_secret = 9\n",
                     {"svc::kek": "kek-old-value"}, secret_options=["kek"])
    assert render("svc", *synth.options()).code == 2
    synth.set_data({**SENSITIVE_DATA, "svc::kek": "kek-new-value"})
    result = render("svc", *synth.options(), "--diff")
    assert "kek-old" not in result.out and "kek-new" not in result.out
    assert re.search(r"^-kek = <redacted>#", result.out, re.M), result.out
    assert '"crypto.kek"' in state_text(synth)


def test_secret_options_must_be_names(scratch):
    synth = one_file(scratch, "[a]\n", {}, secret_options="kek")
    result = render("svc", *synth.options())
    assert result.code == 4 and "secret_options must be a list" in result.err
    assert result.err.count("\n") == 1


@pytest.mark.parametrize("length", [12, 90])
def test_a_validation_error_quoting_a_password_is_masked(scratch, length):
    password = ("Pw" + "x7" * 50)[:length]
    synth = one_file(scratch, "{{ lookup('svc::password') }} = 1\n[a]\n",
                     {"svc::password": password}, validate="ini")
    for channel in (["--diff"], ["--format", "json"]):
        result = render("svc", *synth.options(), *channel)
        assert result.code == 4 and "outside of any [section]" in result.err, result.err
        assert password[:8] not in result.err + result.out


def test_a_yaml_typing_error_does_not_quote_the_scalar(scratch):
    synth = one_file(scratch, "[a]\np = {{ lookup('svc::password') }}\n", {})
    common = synth.hieradata / "data" / "common.yaml"
    common.write_text(common.read_text() + "svc::password: 2031-07-19\n")
    result = render("svc", *synth.options())
    assert result.code == 4 and "unquoted date" in result.err, result.err
    assert "2031" not in result.err


def test_explain_masks_a_secret_interpolated_into_another_key(scratch):
    synth = one_file(scratch, "[a]\n", {
        "svc::api_token": "interp-S3cret-42",  # secret by its name, not Sensitive
        "svc::motd": "hello %{lookup('svc::api_token')} world"})
    result = render("lookup", "--explain", "svc::motd", "--node", "node1.example.com",
                    "--hieradata", str(synth.hieradata), "--templates", str(synth.templates),
                    "--service", "svc")
    assert result.code == 0 and 'Result for "svc::motd": "hello ' in result.out, result.err
    assert "interp-S3cret-42" not in result.out + result.err


# --- a stable key for --noop-only hosts --------------------------------------------------------

def masks(text: str) -> list[str]:
    return re.findall(r"<redacted>#[0-9a-f]{8}", text)


def test_noop_only_host_masks_stably_and_the_first_real_run_keeps_the_key(scratch, tmp_path):
    from renderer.statefile import KEY_NAME

    synth = one_file(scratch, "[a]\npassword = {{ lookup('svc::password') }}\n",
                     {"svc::password": "stable-S3cret"})
    source = tmp_path / "ssh_host_ed25519_key"
    source.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nhost key\n")
    source.chmod(0o600)
    options = ["svc", *synth.options(), "--diff", "--key-source", str(source)]
    first = render(*options, "--noop")
    second = render(*options, "--noop")
    assert masks(first.out) and masks(first.out) == masks(second.out)
    assert not (synth.state / KEY_NAME).exists()  # --noop wrote nothing
    real = render(*options)
    assert masks(real.out) == masks(first.out)
    assert (synth.state / KEY_NAME).stat().st_mode & 0o777 == 0o600
    source.write_bytes(b"rotated host key\n")  # the stored key stays
    (synth.rootfs("svc") / "etc/app/app.ini").write_text("[a]\npassword = x\n")
    assert masks(render(*options, "--noop").out)[-1] == masks(real.out)[-1]


def test_a_key_source_others_could_read_or_plant_is_not_used(tmp_path):
    from renderer.statefile import read_key_source

    good = tmp_path / "key"
    good.write_bytes(b"secret host key")
    good.chmod(0o600)
    assert read_key_source(good) == b"secret host key"
    readable = tmp_path / "readable"
    readable.write_bytes(b"k")
    readable.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(good)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    empty = tmp_path / "empty"
    empty.touch(0o600)
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"k")
    foreign.chmod(0o600)
    os.chown(foreign, 65534, 65534)
    for path in (readable, link, fifo, empty, foreign, tmp_path / "missing", tmp_path):
        assert read_key_source(path) is None, path
