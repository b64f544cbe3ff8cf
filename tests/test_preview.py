"""``render preview``: a real git repository (made in tmp) with two branches of the sample
hieradata and a folder of onceover factsets, checked node by node and file by file against real
runs of both branches into scratch roots (the old branch syncs the node, the new one's real run
says what it writes and restarts).

The branches differ as an operator's change would: a memcached server added, keystone's database
password rotated, mariadb's max_connections raised (every galera member restarts: the cluster
warning), and a node moved between roles (mv1: from the cache role to the controller role, by
its node file).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Systemctl, render
from demo_machines import provision
from eyaml_tokens import bare_key_token

KEYS = Path(__file__).parent / "data" / "hiera" / "eyaml"
PRIVATE = KEYS / "private_key.pkcs7.pem"
PUBLIC = KEYS / "public_key.pkcs7.pem"
OLD_PASSWORD, NEW_PASSWORD = "Kst0ne-db-S3cret", "Kst0ne-db-R0tated-77"
ROLES = {"controller": ["keystone", "memcached"], "cache": ["memcached"], "db": ["mariadb"]}
NODES = {"ctl1": "controller", "ctl2": "controller", "mc1": "cache", "mv1": "cache",
         "db1": "db", "db2": "db", "db3": "db"}
DOMAIN = "example.com"
GALERA = "galera-openstack"  # mariadb's rolling policy: group mariadb::cluster::name
DB = [f"db{i}.{DOMAIN}" for i in (1, 2, 3)]
# the real runs restart mariadb through the stand-in systemctl: its probe too goes to the demo's
# stand-in (the global layer of `make run`, paths relative to the repository), never to a
# container of this machine
DEMO_PROBES = ("--hiera-config", str(REPO / "contrib" / "demo" / "hiera.yaml"))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def facts(name: str) -> dict[str, Any]:
    return {"clientcert": f"{name}.{DOMAIN}", "fqdn": f"{name}.{DOMAIN}", "hostname": name,
            "domain": DOMAIN, "os": {"family": "Debian"}}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def make_repo(root: Path) -> Path:
    """main: the sample plus roles; feature: the operator's change."""
    repo = root / "site"
    shutil.copytree(REPO / "hieradata", repo / "hieradata")
    shutil.copytree(REPO / "service_templates", repo / "service_templates")
    data = repo / "hieradata" / "data"
    edit(repo / "hieradata" / "hiera.yaml", '  - name: "Per service"',
         '  - name: "Per role"\n    path: "roles/%{trusted.extensions.pp_role}.yaml"\n'
         '  - name: "Per service"')
    (data / "roles").mkdir()
    for role, services in ROLES.items():
        (data / "roles" / f"{role}.yaml").write_text(f"render::services: {json.dumps(services)}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "sample with roles")
    git(repo, "checkout", "-qb", "feature")
    edit(data / "common.yaml", "  - 192.0.2.22\n", "  - 192.0.2.22\n  - 192.0.2.23\n")
    edit(data / "credentials.yaml", OLD_PASSWORD, NEW_PASSWORD)
    edit(data / "services" / "mariadb.yaml", "4096", "8192")
    (data / "nodes" / f"mv1.{DOMAIN}.yaml").write_text(
        f"render::services: {json.dumps(ROLES['controller'])}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "memcached added, password rotated, galera tuned, mv1 moved")
    git(repo, "checkout", "-q", "main")
    (repo / "hieradata" / "data" / "common.yaml").write_text("broken: [\n")  # never read
    return repo


def make_nodes(root: Path) -> Path:
    folder = root / "nodes"
    folder.mkdir()
    for name, role in NODES.items():
        (folder / f"{name}.json").write_text(json.dumps(
            {"name": f"{name}.{DOMAIN}", "values": facts(name),
             "trusted": {"pp_role": role}}))
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("preview")
    return make_repo(root), make_nodes(root)


def preview(repo: Path, nodes: Path, *args: str) -> tuple[int, str, str]:
    result = render("preview", "--repo", str(repo), "--from", "main", "--to", "feature",
                    "--nodes", str(nodes), *args)
    return result.code, result.out, result.err


def preview_json(repo: Path, nodes: Path, *args: str) -> dict[str, Any]:
    code, out, err = preview(repo, nodes, "--format", "json", *args)
    assert code == 2, err
    return json.loads(out)


def untagged(doc: dict[str, Any]) -> str:
    """The document without its mask tags (each preview has its own key), groups in order."""
    doc = {**doc, "groups": sorted(doc["groups"], key=lambda g: g["nodes"])}
    return re.sub(r"<redacted>#[0-9a-f]{8}", "<redacted>", json.dumps(doc, sort_keys=True))


def by_node(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node: group for group in doc["groups"] for node in group["nodes"]}


# --- against real runs ---------------------------------------------------------------------------

def checkout(repo: Path, ref: str, into: Path) -> Path:
    git(repo, "worktree", "add", "-q", "--detach", str(into), ref)
    return into


def real_run(tree: Path, name: str, roots: Path, systemctl: Systemctl) -> dict[str, Any]:
    """``name``'s services as its data lists them, rendered for real into ``roots``."""
    facts_file = roots / "facts.json"
    facts_file.write_text(json.dumps(facts(name)))
    source = ["--hieradata", str(tree / "hieradata"), "--facts", str(facts_file),
              "--trusted-extension", f"pp_role={NODES[name]}"]
    found = render("lookup", "render::services", *source)
    assert found.code == 0, found.err
    services = json.loads(found.out)
    provision(tree / "service_templates", roots / "machines", tree / "hieradata",
              f"{name}.{DOMAIN}")
    (roots / "host").mkdir(exist_ok=True)
    result = render("--format", "json", *services, *source,
                    "--templates", str(tree / "service_templates"),
                    "--machines-dir", str(roots / "machines"), "--host-root",
                    str(roots / "host"), "--state-dir", str(roots / "state"),
                    "--key-source", str(PRIVATE), "--health-settle", "0", *systemctl.options,
                    *DEMO_PROBES, cwd=REPO)
    assert result.code in (0, 2), result.err
    return json.loads(result.out)


@pytest.mark.slow
def test_preview_agrees_with_real_runs_of_both_branches(site, tmp_path: Path):
    repo, nodes = site
    doc = preview_json(repo, nodes, "-j", "2")
    entries = by_node(doc)
    old, new = checkout(repo, "main", tmp_path / "old"), checkout(repo, "feature", tmp_path / "new")
    systemctl = Systemctl(tmp_path / "systemctl")
    for name in NODES:
        roots = tmp_path / "roots" / name
        roots.mkdir(parents=True)
        real_run(old, name, roots, systemctl)  # the node as it runs today, synced
        report = real_run(new, name, roots, systemctl)  # what merging does to it
        written = {f["target"]: Path(f["path"]) for s in report["services"]
                   for f in s["files"] if f["written"]}
        restarted = sorted((d["kind"], d["machine"], d["unit"]) for s in report["services"]
                           for d in s["restart_details"] if not d["with_container"])
        entry = entries[f"{name}.{DOMAIN}"]
        files = {f["target"]: f for s in entry["services"] for f in s["files"]
                 if f["change"] in ("create", "update", "fix")}
        assert sorted(files) == sorted(written), name
        assert written or name == "mc1", name  # every other node changes
        for target, item in files.items():  # every unmasked line the diff adds is in the file
            added = [line[1:] for line in item["diff"].splitlines()
                     if line.startswith("+") and not line.startswith("+++")]
            path = written[target]  # a link entry's content is its target (renderer.edits)
            content = [os.readlink(path)] if path.is_symlink() else path.read_text().splitlines()
            assert all(line in content for line in added if "<redacted>" not in line), target
        shown = sorted((r["kind"], r["machine"], r["name"]) for s in entry["services"]
                       for r in s["restarts"] if "with_container" not in r)
        assert shown == restarted, name
        assert restarted or name == "mc1", name


# --- what the report says ------------------------------------------------------------------------

def test_changes_grouped_and_cluster_warned(site):
    repo, nodes = site
    doc = preview_json(repo, nodes)
    groups = {tuple(g["nodes"]): g for g in doc["groups"]}
    assert (f"db1.{DOMAIN}", f"db2.{DOMAIN}", f"db3.{DOMAIN}") in groups
    assert (f"ctl1.{DOMAIN}", f"ctl2.{DOMAIN}") in groups
    assert doc["summary"] == {"errored": 0, "changed": 6, "unaffected": 1}  # mc1: no change
    moved = by_node(doc)[f"mv1.{DOMAIN}"]
    assert {s["service"]: s["change"] for s in moved["services"]}["keystone"] == "added"
    assert [w["group"] for w in doc["warnings"]] == [GALERA]  # from the restart policy
    assert doc["warnings"][0]["members"] == DB
    assert doc["warnings"][0]["units"] == ["mariadb.service in mariadb"]
    code, out, _ = preview(repo, nodes, "-j", "1")
    assert code == 2
    assert f"3 nodes: db1.{DOMAIN}, db2.{DOMAIN}, db3.{DOMAIN} (changed)" in out
    assert f"WARNING: cluster {GALERA}: mariadb (mariadb.service in mariadb) would restart on " \
        f"every member ({', '.join(DB)}), paced by its rolling policy" in out
    assert f"unaffected: 1 node: mc1.{DOMAIN}\n" in out
    assert out.rstrip().endswith("0 node(s) errored, 6 changed, 1 unaffected (main -> feature)")


def test_parallel_and_serial_agree(site):
    repo, nodes = site
    assert untagged(preview_json(repo, nodes, "-j", "3")) == \
        untagged(preview_json(repo, nodes, "-j", "1"))


def test_members_are_the_previewed_nodes_and_markdown(site, tmp_path: Path):
    repo, nodes = site
    few = tmp_path / "few"
    few.mkdir()
    for name in ("db1", "db2", "mc1"):
        shutil.copy(nodes / f"{name}.json", few)
    doc = preview_json(repo, few)
    assert doc["warnings"][0]["members"] == DB[:2]  # both previewed members restart
    (few / "db2.json").unlink()
    assert preview_json(repo, few)["warnings"] == []  # one member previewed: no cluster seen
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(nodes / "ctl1.json", only)
    code, out, err = preview(repo, only, "--format", "markdown")
    assert code == 2, err
    assert out.startswith("### render preview: main → feature\n")
    assert f"#### 1 node: ctl1.{DOMAIN} (changed)" in out
    assert "```diff\n" in out and "+memcache_servers=" in out


def test_no_change_exits_0(site):
    repo, nodes = site
    result = render("preview", "--repo", str(repo), "--from", "main", "--to", "main",
                    "--nodes", str(nodes / "mc1.json"))
    assert result.code == 0, result.err
    assert "0 node(s) errored, 0 changed, 1 unaffected" in result.out


def test_errors_exit_4_and_name_the_revision(site, tmp_path: Path):
    repo, nodes = site
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": f"x.{DOMAIN}", "values": facts("x"),
                               "trusted": {"pp_role": "nonexistent"}}))
    result = render("preview", "--repo", str(repo), "--from", "main", "--to", "feature",
                    "--nodes", str(bad))
    assert result.code == 4
    assert "hiera key 'render::services' not found" in result.out
    result = render("preview", "--repo", str(repo), "--from", "nope", "--nodes", str(bad))
    assert result.code == 4 and "'nope' names no commit" in result.err


def test_no_secret_in_any_output(site):
    repo, nodes = site
    for form in ("text", "json", "markdown"):
        code, out, err = preview(repo, nodes, "--format", form)
        assert code == 2, err
        for secret in (OLD_PASSWORD, NEW_PASSWORD):
            assert secret not in out + err, form
        assert "<redacted>#" in out


# --- eyaml ---------------------------------------------------------------------------------------

def eyaml_repo(root: Path, options: str) -> Path:
    """keystone's database password from an eyaml level; feature re-encrypts another one."""
    repo = root / "eyaml"
    shutil.copytree(REPO / "hieradata", repo / "hieradata")
    shutil.copytree(REPO / "service_templates", repo / "service_templates")
    edit(repo / "hieradata" / "hiera.yaml", "hierarchy:\n",
         "hierarchy:\n  - name: eyaml\n    lookup_key: eyaml_lookup_key\n"
         f"    path: secrets.eyaml\n    options:\n      {options}\n")
    data = repo / "hieradata" / "data"
    with (data / "common.yaml").open("a") as handle:
        handle.write("render::services: [keystone]\n")
    token = bare_key_token(OLD_PASSWORD.encode(), PUBLIC.read_bytes())
    (data / "secrets.eyaml").write_text(f"keystone::database::password: {token}\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "eyaml")
    token = bare_key_token(NEW_PASSWORD.encode(), PUBLIC.read_bytes())
    (data / "secrets.eyaml").write_text(f"keystone::database::password: {token}\n")
    git(repo, "commit", "-qam", "rotated")
    return repo


@pytest.mark.parametrize("key", [True, False], ids=["with-key", "without-key"])
def test_eyaml_with_and_without_the_key(tmp_path: Path, key: bool):
    options = f"pkcs7_private_key: {PRIVATE if key else tmp_path / 'absent.pem'}"
    repo = eyaml_repo(tmp_path, options)
    node = tmp_path / "n.json"
    node.write_text(json.dumps({"name": f"ctl1.{DOMAIN}", "values": facts("ctl1")}))
    tokens = (repo / "hieradata" / "data" / "secrets.eyaml").read_text()
    cipher = tokens.split("ENC[PKCS7,", 1)[1][:40]
    for form in ("text", "json", "markdown"):
        result = render("preview", "--repo", str(repo), "--from", "HEAD~1", "--to", "HEAD",
                        "--nodes", str(node), "--format", form, "-j", "1")
        assert result.code == 2, result.err
        output = result.out + result.err
        for secret in (OLD_PASSWORD, NEW_PASSWORD, cipher, "eyaml-sealed-"):
            assert secret not in output, (form, secret)
        assert "keystone.conf" in output
        assert ("encrypted value changed" in output) is not key, form
    same = render("preview", "--repo", str(repo), "--from", "HEAD~1", "--to", "HEAD~1",
                  "--nodes", str(node))
    assert same.code == 0, same.out  # the same ciphertext: nothing changed, key or not


# --- the node formats ----------------------------------------------------------------------------

def test_puppetdb_export_and_puppet_cache_read_as_the_factsets(site, tmp_path: Path):
    """The same nodes as a PuppetDB factsets export (one JSON list, facts expanded, the trusted
    fact holding the extensions) and as Puppet's cached facts (yaml; its role from no trusted
    data, so those nodes have no role: a node error naming the key)."""
    repo, nodes = site
    export = [{"certname": f"{name}.{DOMAIN}", "environment": "production",
               "facts": {"href": "/pdb/query/v4/factsets/x/facts", "data": [
                   *({"name": k, "value": v} for k, v in facts(name).items()),
                   {"name": "trusted", "value": {"certname": f"{name}.{DOMAIN}",
                                                 "extensions": {"pp_role": role}}}]}}
              for name, role in NODES.items()]
    (tmp_path / "pdb.json").write_text(json.dumps(export))
    assert untagged(preview_json(repo, tmp_path / "pdb.json")) == \
        untagged(preview_json(repo, nodes))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"db1.{DOMAIN}.yaml").write_text(
        "--- !ruby/object:Puppet::Node::Facts\nname: db1.example.com\nvalues:\n"
        "  os:\n    family: Debian\n  hostname: db1\n  domain: example.com\n"
        "  fqdn: db1.example.com\n  clientcert: db1.example.com\n"
        "timestamp: 2026-01-01 00:00:00.000000000 +00:00\n")
    code, out, _ = preview(repo, cache)
    assert code == 4
    assert f"1 node: db1.{DOMAIN} (errored)" in out
    assert "hiera key 'render::services' not found" in out


def test_bad_factset_is_one_line(tmp_path: Path, site):
    repo, _ = site
    (tmp_path / "bad.json").write_text("{not json")
    result = render("preview", "--repo", str(repo), "--from", "main", "--nodes",
                    str(tmp_path / "bad.json"))
    assert result.code == 4
    assert result.err.startswith(f"render: {tmp_path / 'bad.json'}: invalid JSON")
    assert len(result.err.splitlines()) == 1


def test_worktree_only_when_asked(site, tmp_path: Path):
    """The working tree's broken common.yaml (uncommitted) is read only with --worktree."""
    repo, nodes = site
    code, out, err = preview(repo, nodes / "ctl1.json")
    assert code == 2, err
    result = render("preview", "--repo", str(repo), "--from", "main", "--worktree",
                    "--nodes", str(nodes / "ctl1.json"))
    assert result.code == 4
    assert "common.yaml" in result.out


def test_error_paths_name_the_revision(tmp_path: Path):
    from renderer.preview.revision import Revision

    revision = Revision("feature", "0" * 40, tmp_path, tmp_path / "hieradata", ())
    line = f"render: keystone: {tmp_path}/hieradata/data/common.yaml:3: bad"
    assert revision.shown(line) == "render: keystone: feature:hieradata/data/common.yaml:3: bad"


def test_bench_site_changes_every_node(tmp_path: Path):
    """bench/preview_site.py at 3 nodes: the figure measures a preview where every node
    changes (exit 2), not an error."""
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    import preview_site

    options = preview_site.build(tmp_path, 3)
    result = render("preview", "-j", "2", "--no-diff", *options)
    assert result.code == 2, result.out + result.err
    assert "0 node(s) errored, 3 changed, 0 unaffected" in result.out


def test_a_service_failing_in_the_new_revision_errs_its_node(tmp_path: Path):
    """The memcached template asks for a key no level has: that node errs (exit 4), the error
    line names the key and the template as ``REF:path``, the service shows no diff."""
    repo = tmp_path / "site"
    shutil.copytree(REPO / "hieradata", repo / "hieradata")
    shutil.copytree(REPO / "service_templates", repo / "service_templates")
    with (repo / "hieradata" / "data" / "common.yaml").open("a") as handle:
        handle.write("render::services: [memcached]\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    template = repo / "service_templates" / "memcached" / "memcached.conf.j2"
    template.write_text(template.read_text() + "{{ lookup('memcached::nowhere') }}\n")
    git(repo, "commit", "-qam", "broken")
    node = tmp_path / "n.json"
    node.write_text(json.dumps({"name": f"mc1.{DOMAIN}", "values": facts("mc1")}))
    result = render("preview", "--repo", str(repo), "--from", "HEAD~1", "--nodes", str(node),
                    "--format", "json")
    assert result.code == 4, result.err
    doc = json.loads(result.out)
    assert doc["summary"] == {"errored": 1, "changed": 0, "unaffected": 0}
    (service,) = doc["groups"][0]["services"]
    assert service["change"] == "error" and service["files"] == []
    assert "HEAD:service_templates/memcached/memcached.conf.j2:" in service["errors"][0]
    assert "'memcached::nowhere' not found" in service["errors"][0]
