"""eyaml_lookup_key levels (renderer.hiera.eyaml, renderer.hiera.pkcs7) beyond the Puppet
conformance case (tests/data/hiera/cases/eyaml_pkcs7.yaml): eyaml 4.1+ tokens (bare public key,
serial 0), Debian's python3 and libraries, ENC[GPG,...] through a real gpg key, where the private
key may come from, masking, and errors that never show a token.

The key pair under tests/data/hiera/eyaml is a TEST key made by ``eyaml createkeys`` for these
tests only."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Tree, render
from eyaml_tokens import bare_key_token

from renderer import lookup as lookup_command
from renderer.errors import HieraDataError
from renderer.hiera import Hiera
from renderer.scope import build_scope

KEYS = Path(__file__).parent / "data" / "hiera" / "eyaml"
PRIVATE = KEYS / "private_key.pkcs7.pem"
PUBLIC = KEYS / "public_key.pkcs7.pem"
CASE = Path(__file__).parent / "data" / "hiera" / "cases" / "eyaml_pkcs7.yaml"


def _cert_token() -> str:
    """A token Debian's eyaml 3.3 made (certificate recipient); its plaintext is 's3cr3t pass'."""
    case = yaml.safe_load(CASE.read_text())
    return yaml.safe_load(case["files"]["data/nodes/node1.example.com.eyaml"])["password"]


def _tree(root: Path, data: str, options: str | None = None, extra: str = "") -> Path:
    options = options or f"pkcs7_private_key: {PRIVATE}"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "hiera.yaml").write_text(
        "version: 5\nhierarchy:\n  - name: secrets\n    lookup_key: eyaml_lookup_key\n"
        f"    path: secrets.eyaml\n    options:\n      {options}\n"
        "  - name: common\n    data_hash: yaml_data\n    path: common.yaml\n" + extra)
    (root / "data" / "secrets.eyaml").write_text(data)
    (root / "data" / "common.yaml").write_text("plain: value\n")
    return root / "hiera.yaml"


def _lookup(config: Path, key: str) -> object:
    return Hiera.load(config).lookup(key, build_scope("node1.example.com", None, []))


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = lookup_command.main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_certificate_and_bare_key_tokens_decrypt(tmp_path: Path):
    bare = bare_key_token(b"bare secret\n", PUBLIC.read_bytes())
    config = _tree(tmp_path, f"cert: {_cert_token()}\nbare: {bare}\n"
                             f"both: 'a={_cert_token()};b={bare}'\n")
    assert _lookup(config, "cert") == "s3cr3t pass"
    assert _lookup(config, "bare") == "bare secret"  # one trailing newline chomped
    assert _lookup(config, "both") == "a=s3cr3t pass;b=bare secret"


def test_bare_key_token_is_valid_cms_for_openssl(tmp_path: Path):
    """The 4.1+ layout this test builds is one real OpenSSL decrypts (it is not render's own)."""
    der = tmp_path / "token.der"
    der.write_bytes(base64.b64decode(bare_key_token(b"x y", PUBLIC.read_bytes())[10:-1]))
    done = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(der),
                           "-inkey", str(PRIVATE)], capture_output=True, check=True)
    assert done.stdout == b"x y"


@pytest.mark.slow
def test_debian_python_and_libraries_decrypt_both_kinds(tmp_path: Path):
    """Debian's /usr/bin/python3 with python3-asn1crypto and python3-cryptography (38, which has
    no PKCS7 decryption of its own), on a world-readable copy of the package."""
    lib = tmp_path / "lib"
    shutil.copytree(REPO / "renderer", lib / "renderer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in (tmp_path, *tmp_path.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    bare = bare_key_token(b"bare secret", PUBLIC.read_bytes())
    script = ("import json, sys, cryptography, asn1crypto\n"
              "from renderer.hiera.eyaml import decrypt_string\n"
              "opts = {'pkcs7_private_key': sys.argv[1]}\n"
              "print(json.dumps([cryptography.__version__, asn1crypto.__file__,\n"
              "    [decrypt_string(t, opts, []) for t in sys.argv[2:]]]))\n")
    done = subprocess.run(["/usr/bin/python3", "-c", script, str(PRIVATE), _cert_token(), bare],
                          capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(lib), "PYTHONNOUSERSITE": "1",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    version, where, plain = json.loads(done.stdout)
    assert where.startswith("/usr/lib/python3/dist-packages/")
    assert int(version.split(".")[0]) < 45  # the Debian 12 library, not a newer one
    assert plain == ["s3cr3t pass", "bare secret"]


def test_private_key_from_env_var_b64_env_var_and_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    pem = PRIVATE.read_text()
    monkeypatch.setenv("T_EYAML_PEM", pem)
    monkeypatch.setenv("T_EYAML_B64", base64.b64encode(pem.encode()).decode())
    token = _cert_token()
    for index, options in enumerate((
            "pkcs7_private_key_env_var: T_EYAML_PEM",
            "pkcs7_b64_private_key_env_var: T_EYAML_B64",
            f"pkcs7_private_key: {PRIVATE}",
            # the environment variable wins over the file, as in hiera-eyaml
            "{pkcs7_private_key: /nonexistent, pkcs7_private_key_env_var: T_EYAML_PEM}")):
        config = _tree(tmp_path / str(index), f"pw: {token}\n", options)
        assert _lookup(config, "pw") == "s3cr3t pass", options


def test_missing_private_key_matters_only_when_a_token_is_decrypted(tmp_path: Path):
    config = _tree(tmp_path, f"plain_here: text\npw: {_cert_token()}\n",
                   "pkcs7_private_key: /nonexistent/private.pem")
    assert _lookup(config, "plain_here") == "text"
    assert _lookup(config, "plain") == "value"
    with pytest.raises(HieraDataError) as failure:
        _lookup(config, "pw")
    message = str(failure.value)
    assert "'pw'" in message and "'secrets'" in message and "secrets.eyaml" in message
    assert "file /nonexistent/private.pem does not exist" in message
    assert "ENC[" not in message and "MIIB" not in message and "\n" not in message


def test_wrong_key_fails_with_one_line_and_no_token(tmp_path: Path):
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True,
                   capture_output=True)
    config = _tree(tmp_path, f"pw: {_cert_token()}\n", f"pkcs7_private_key: {other}")
    code, out, err = _cli("--hieradata", str(config.parent), "--node", "node1.example.com", "pw")
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "'pw'" in err and "secrets" in err, err
    assert "MIIB" not in err and "s3cr3t" not in err


def test_lookup_prints_plaintext_and_explain_masks_it(tmp_path: Path):
    config = _tree(tmp_path, f"pw: {_cert_token()}\n"
                             f"url: 'mysql://nova:{_cert_token()}@db/nova'\n",
                   extra="")
    (tmp_path / "data" / "common.yaml").write_text("uses: \"is %{lookup('pw')}\"\nplain: v\n")
    base = ["--hieradata", str(config.parent), "--node", "node1.example.com"]
    assert _cli(*base, "--render-as", "json", "pw")[1] == '"s3cr3t pass"\n'  # as puppet lookup
    for key in ("pw", "url", "uses"):
        code, out, err = _cli(*base, "--explain", key)
        assert code == 0, err
        assert "s3cr3t" not in out and "MIIB" not in out, out
        assert "Sensitive [value redacted]" in out or "<redacted>" in out, out


def test_plan_hierarchy_with_an_eyaml_level_leaves_lookups_alone(tmp_path: Path):
    extra = ("plan_hierarchy:\n  - name: plans\n    lookup_key: eyaml_lookup_key\n"
             "    path: plans.eyaml\n    options:\n      pkcs7_private_key: /nonexistent\n")
    config = _tree(tmp_path, f"pw: {_cert_token()}\n", extra=extra)
    assert _lookup(config, "plain") == "value"
    assert _lookup(config, "pw") == "s3cr3t pass"


def test_token_in_yaml_data_level_stays_literal(tmp_path: Path):
    token = _cert_token()
    config = _tree(tmp_path, "x: 1\n")
    (tmp_path / "data" / "common.yaml").write_text(f"plain: {token}\n")
    assert _lookup(config, "plain") == token


def test_unknown_scheme_is_one_clear_error(tmp_path: Path):
    config = _tree(tmp_path, "k: ENC[KMS,AAAA]\n")
    with pytest.raises(HieraDataError, match="Could not find hiera-eyaml encryptor: KMS"):
        _lookup(config, "k")


@pytest.fixture
def gnupghome(tmp_path: Path) -> Path:
    """A real gpg key without a passphrase, in its own GNUPGHOME (the agent it starts is
    stopped at the end)."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--passphrase", "",
                    "--quick-gen-key", "render-test@example.invalid", "rsa2048", "encrypt",
                    "never"], check=True, capture_output=True)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   check=False, capture_output=True)


def _gpg_token(home: Path, plaintext: bytes) -> str:
    done = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--trust-model", "always",
                           "--encrypt", "-r", "render-test@example.invalid"],
                          input=plaintext, capture_output=True, check=True)
    return "ENC[GPG," + base64.b64encode(done.stdout).decode() + "]"


@pytest.mark.slow
def test_gpg_token_decrypts_with_gpg_gnupghome(tmp_path: Path, gnupghome: Path):
    token = _gpg_token(gnupghome, b"gpg secret\n")
    data = f"gpg: {token}\nmixed: \"user:{token}@host\"\npw: {_cert_token()}\n"
    config = _tree(tmp_path / "ok", data,
                   f"{{gpg_gnupghome: {gnupghome}, pkcs7_private_key: {PRIVATE}}}")
    assert _lookup(config, "gpg") == "gpg secret"
    assert _lookup(config, "mixed") == "user:gpg secret\n@host"  # chomp only at the end
    assert _lookup(config, "pw") == "s3cr3t pass"
    empty = tmp_path / "empty-home"
    empty.mkdir(mode=0o700)
    config = _tree(tmp_path / "wrong", data, f"gpg_gnupghome: {empty}")
    with pytest.raises(HieraDataError) as failure:
        _lookup(config, "gpg")
    message = str(failure.value)
    assert "'gpg'" in message and "'secrets'" in message and "GPG" in message
    assert token[8:40] not in message and "\n" not in message
    subprocess.run(["gpgconf", "--homedir", str(empty), "--kill", "gpg-agent"], check=False,
                   capture_output=True)
    for options, said in (("pkcs7_private_key: /x", "No GPG home directory configured"),
                          (f"gpg_gnupghome: {tmp_path}/absent", "doesn't exist")):
        config = _tree(tmp_path / said[:2], data, options)
        with pytest.raises(HieraDataError, match=said):
            _lookup(config, "gpg")


@pytest.mark.slow
def test_gpg_home_from_hiera_eyaml_gpg_gnupghome(tmp_path: Path, gnupghome: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    """The plugin's environment variable wins over the level's option."""
    monkeypatch.setenv("HIERA_EYAML_GPG_GNUPGHOME", str(gnupghome))
    config = _tree(tmp_path, f"gpg: {_gpg_token(gnupghome, b'from env')}\n",
                   f"gpg_gnupghome: {tmp_path}/absent")
    assert _lookup(config, "gpg") == "from env"


@pytest.mark.slow
def test_run_masks_decrypted_values_without_lookup_options(tree: Tree):
    """A value from an eyaml token is secret in a run's diff and report, even under a key no
    lookup_options mark Sensitive and an option no name pattern calls secret."""
    hiera = tree.hieradata / "hiera.yaml"
    hiera.write_text(hiera.read_text().replace(
        "hierarchy:\n",
        "hierarchy:\n  - name: eyaml\n    lookup_key: eyaml_lookup_key\n"
        f"    path: secrets.eyaml\n    options:\n      pkcs7_private_key: {PRIVATE}\n", 1))
    token = bare_key_token(b"eyaml-only-user-77", PUBLIC.read_bytes())
    (tree.hieradata / "data" / "secrets.eyaml").write_text(f"keystone::database::user: {token}\n")
    result = render("--diff", "--no-restart", "keystone", *tree.options())
    assert result.code == 2, result.err  # files changed, restarts owed
    assert "eyaml-only-user-77" not in result.out + result.err
    assert "<redacted>" in result.out
    written = [path for path in tree.machines.rglob("keystone.conf")
               if b"eyaml-only-user-77" in path.read_bytes()]
    assert written, "the plaintext reaches the rendered file"


@pytest.mark.slow
@pytest.mark.puppet
def test_debian_hiera_eyaml_3_3_fails_on_bare_key_tokens_render_reads(tmp_path: Path):
    """The one known disagreement, on purpose: Debian's hiera-eyaml 3.3 matches the recipient
    against pkcs7_public_key's certificate, so real puppet lookup fails on a 4.1+ token
    (serial 0); render decrypts it as hiera-eyaml 4.1+ does."""
    from test_hiera_puppet import _ruby, _run_puppet

    ruby = _ruby()
    assert ruby, "puppet's ruby is needed"
    token = bare_key_token(b"bare", PUBLIC.read_bytes())
    options = (f"{{pkcs7_private_key: {PRIVATE}, pkcs7_public_key: {PUBLIC}}}")
    case = {"hiera": "version: 5\ndefaults: {datadir: data, lookup_key: eyaml_lookup_key, "
                     f"options: {options}}}\nhierarchy:\n  - {{name: c, path: c.eyaml}}\n",
            "files": {"data/c.eyaml": f"bare: {token}\ncert: {_cert_token()}\n"},
            "queries": [{"key": "bare"}, {"key": "cert"}]}
    bare, cert = _run_puppet("bare", case, ruby, tmp_path)
    assert cert["status"] == "found" and cert["value"] == "s3cr3t pass"
    assert bare["status"] == "error" and "decrypt error" in bare["message"]
    config = _tree(tmp_path / "render", f"bare: {token}\n")
    assert _lookup(config, "bare") == "bare"
