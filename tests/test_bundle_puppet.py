"""The server/agent path with real Puppet (Debian's): ``puppet apply`` compiles a catalog from an
environment holding the hieradata (class render::bundle runs ``render bundle`` through the
function render::bundle), delivers the bundle, and render::service runs render on "the node",
which reads only the bundle; the files equal a render with the data present, and no secret is in
the catalog Puppet caches, its reports, or any output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, Tree, puppet_dirs, render
from test_bundle import EYAML_SECRET, SECRETS, contents, eyaml_level, key_source, node_copy

from renderer.services import list_services

pytestmark = [pytest.mark.puppet, pytest.mark.slow]
CERTNAME = "controller1.example.com"
SECRET = "Puppet-0nly-S3cret"  # only in the server's data
RENDER = Path(shutil.which("render", path=str(Path(__file__).parent.parent / ".venv" / "bin"))
              or "render")

# Compiles the catalog as a server does and caches it as an agent does (client_data/catalog,
# the json terminus of `puppet agent`), which `puppet apply` never writes.
COMPILE = """
require 'puppet'
Puppet.initialize_settings(ARGV)
Puppet[:rich_data] = true
env = Puppet.lookup(:environments).get(Puppet[:environment])
Puppet.override(current_environment: env) do
  node = Puppet::Node.new(Puppet[:certname], environment: env)
  node.merge(Puppet::Node::Facts.indirection.find(Puppet[:certname]).values)
  catalog = Puppet::Parser::Compiler.compile(node).to_resource
  Puppet::Resource::Catalog.indirection.terminus_class = :json
  Puppet::Resource::Catalog.indirection.save(catalog)
end
"""


class Site:
    """A Puppet server's environment and an agent's ssldir, all inside the test's directory."""

    def __init__(self, tree: Tree, work: Path) -> None:
        self.tree, self.work = tree, work
        data = tree.hieradata / "data" / "credentials.yaml"
        data.write_text(data.read_text().replace("Kst0ne-db-S3cret", SECRET))
        self.options = [*puppet_dirs(work), f"--certname={CERTNAME}",
                        f"--hiera_config={work / 'hiera.yaml'}"]
        (work / "hiera.yaml").write_text("version: 5\nhierarchy: []\n")
        self.environment = work / "codedir" / "environments" / "production"
        shutil.copytree(tree.hieradata, self.environment)
        (self.environment / "modules").mkdir()
        (self.environment / "modules" / "render").symlink_to(REPO / "contrib/puppet/render")
        ssl = work / "ssldir"
        for name in ("certs", "private_keys"):
            (ssl / name).mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", f"/CN={CERTNAME}", "-keyout",
                        str(ssl / "private_keys" / f"{CERTNAME}.pem"),
                        "-out", str(ssl / "certs" / f"{CERTNAME}.pem")],
                       check=True, capture_output=True)

    def manifest(self, node: Tree, bundle: Path, encrypt: bool) -> str:
        services = list_services(self.tree.templates)
        listed = ", ".join(f"'{s}'" for s in services)
        roots = node.options()
        at = roots.index("--node")
        options = [*roots[:at], *roots[at + 2:], "--no-restart", *key_source(self.tree)]
        quoted = ", ".join(f"'{o}'" for o in options)
        return (f"class {{ 'render::bundle': services => [{listed}], path => '{bundle}', "
                f"command => ['{RENDER}'], templates => ['{self.tree.templates}'], "
                f"encrypt => {str(encrypt).lower()} }}\n"
                f"render::service {{ [{listed}]: command => '{RENDER}', options => [{quoted}], "
                f"facts_dir => '{self.work / 'facts'}' }}\n")

    def apply(self, manifest: str) -> subprocess.CompletedProcess:
        path = self.environment / "manifests" / "site.pp"
        path.parent.mkdir(exist_ok=True)
        path.write_text(manifest)
        command = ["puppet", "apply", "--detailed-exitcodes", "--color=false",
                   "--write-catalog-summary", *self.options,
                   f"--modulepath={REPO / 'contrib' / 'puppet'}", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    def agent_catalog(self) -> str:
        """The catalog as `puppet agent` caches it: $vardir/client_data/catalog/<node>.json."""
        done = subprocess.run(["ruby", "-e", COMPILE, "--", *self.options], capture_output=True,
                              text=True, timeout=300, check=False)
        cached = self.work / "vardir" / "client_data" / "catalog" / f"{CERTNAME}.json"
        assert cached.is_file(), done.stdout + done.stderr
        return cached.read_text()

    def written(self) -> dict[str, str]:
        """Every file Puppet wrote (catalog summary, state, reports, logs), not the server's
        data."""
        return {str(p): p.read_text(errors="replace") for p in sorted(self.work.rglob("*"))
                if p.is_file() and not p.is_relative_to(self.work / "codedir")
                and not p.is_relative_to(self.work / "ssldir")}


def test_puppet_delivers_a_bundle_the_node_renders_from_without_hieradata(tree: Tree,
                                                                          tmp_path: Path):
    assert shutil.which("puppet"), "Debian's puppet is not installed: run 'make test'"
    assert RENDER.is_file(), f"{RENDER} missing"
    # a real PKCS7 token in the environment's data; its key only where the server reads it
    token, _ = eyaml_level(tree, tmp_path / "server-keys", unreadable=False)
    node = node_copy(tree, tmp_path / "node")
    site = Site(tree, tmp_path / "puppet")
    bundle = node.base / "bundle.pem"
    result = site.apply(site.manifest(node, bundle, encrypt=True))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Render_sync[keystone]/state: render changed files" in result.stdout
    assert bundle.read_bytes().startswith(b"-----BEGIN CMS-----")
    assert oct(bundle.stat().st_mode & 0o777) == "0o600" and bundle.stat().st_uid == 0
    assert not node.hieradata.exists()

    facts = site.work / "facts" / f"{CERTNAME}.json"
    with_data = render("--all", *tree.options(), "--no-restart", *key_source(tree), "--facts",
                       str(facts), "--var", "environment=production")
    assert with_data.code == 2, with_data.err
    assert contents(node) == contents(tree) and len(contents(tree)) > 40
    keystone = node.machines / "keystone" / "etc" / "keystone" / "keystone.conf"
    assert SECRET in keystone.read_text()  # the server's value reached the node's file
    assert f"driver={EYAML_SECRET}\n" in keystone.read_text()  # decrypted by the server

    outputs = {"puppet stdout": result.stdout, "puppet stderr": result.stderr,
               "bundle": bundle.read_text(), **site.written(),
               **{str(p): p.read_text(errors="replace") for p in node.state.rglob("*")
                  if p.is_file()}}
    assert any("last_run_report.yaml" in name for name in outputs)
    assert any("/reports/" in name for name in outputs)
    assert any("resources.txt" in name for name in outputs)
    cipher = token[10:70]  # a piece of the token's base64
    for secret in (SECRET, *SECRETS, EYAML_SECRET, cipher):
        leaks = [name for name, text in outputs.items() if secret in text]
        assert not leaks, f"{secret} in {leaks}"
    catalog = site.agent_catalog()
    assert "-----BEGIN CMS-----" in catalog and '"sensitive_parameters"' in catalog
    assert not any(secret in catalog for secret in (SECRET, *SECRETS, EYAML_SECRET, cipher))

    # the same bundle is the same envelope (kept on the server): nothing changes, no event
    again = site.apply(site.manifest(node, bundle, encrypt=True))
    assert again.returncode == 0, again.stdout + again.stderr
    kept = site.work / "vardir" / "render-bundles" / f"{CERTNAME}.pem"
    assert oct(kept.stat().st_mode & 0o777) == "0o600" and SECRET not in kept.read_text()


def test_without_encryption_the_value_is_clear_only_in_the_file_and_the_agents_catalog(
        tree: Tree, tmp_path: Path):
    """What Puppet 7 does with a Sensitive file content, measured: redacted in the log, the
    reports and the catalog summary, but in clear in the catalog the agent caches (and
    receives), and in the file."""
    node = node_copy(tree, tmp_path / "node")
    site = Site(tree, tmp_path / "puppet")
    bundle = node.base / "bundle.json"
    result = site.apply(site.manifest(node, bundle, encrypt=False))
    assert result.returncode == 2, result.stdout + result.stderr
    assert json.loads(bundle.read_text())["format"] == "render-bundle"
    assert SECRET in bundle.read_text()
    assert "changed [redacted] to [redacted]" in result.stdout
    leaks = [name for name, text in site.written().items() if SECRET in text]
    assert not leaks, leaks
    catalog = site.agent_catalog()
    assert SECRET in catalog  # the reason render::bundle encrypts by default
