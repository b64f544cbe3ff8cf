"""State: hashing and normalisation, records, change classification, kept versions, and a unit
that fails while other services go on (restarts against a stand-in systemctl; the real namespaced
systemd is in test_restart.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from conftest import Tree, render
from test_apply import make_services, plans
from test_plan import setup  # noqa: F401,F811  (fixture)

from renderer import state as st
from renderer.apply import Options, apply
from renderer.errors import ApplyError
from renderer.masking import Masker
from renderer.plan import ServicePlan
from renderer.report import exit_code
from renderer.restarts import current_hash
from renderer.runner import plan_rendered
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem
from renderer.templates import Rendered

CONF = "machines/keystone/etc/keystone/keystone.conf"
NSPAWN = "host/etc/systemd/nspawn/keystone.nspawn"
CONF_KEY = "container:keystone:/etc/keystone/keystone.conf"  # state records: the target
NSPAWN_KEY = "host:-:/etc/systemd/nspawn/keystone.nspawn"


def test_config_hash_is_normalised():
    a, b = ("/x/a.conf", "1" * 64), ("/x/b.conf", "2" * 64)
    assert st.config_hash([a, b]) == st.config_hash([b, a]) == st.config_hash([a, b, a])
    assert st.config_hash([a]) != st.config_hash([a, b])
    assert st.config_hash([a]).startswith(f"{st.HASH_SCHEME}:")
    assert st.file_hash(b"x", 0, 0, 0o644) != st.file_hash(b"x", 0, 0, 0o640)
    assert st.file_hash(b"x", 0, 0, 0o644) != st.file_hash(b"x", 1, 0, 0o644)


def test_config_sets_count_restart_files_once_and_skip_files_without_restart(setup):  # noqa: F811
    service, roots, system, _ = setup  # a.conf: container; b.conf: container + httpd; c, d: none

    def planned(c_content: bytes) -> ServicePlan:
        return plan_rendered(service, [Rendered(s, c_content if s.dest.name == "c.conf" else b"x\n")
                                      for s in service.files], roots, system, Masker(b"k"))

    plan = planned(b"x\n")
    sets = {a.unit: [p.rsplit("/", 1)[1] for p in paths]
            for a, paths in plan.config_sets.items()}
    assert sets == {"systemd-nspawn@m1.service": ["a.conf", "b.conf"],
                    "httpd.service": ["b.conf"]}
    container = next(a for a in plan.config_sets if a.unit.startswith("systemd-nspawn"))
    before = current_hash(plan, plan.config_sets[container])
    other = planned(b"y\n")  # c.conf has no restart action: the container's hash stays
    assert current_hash(other, other.config_sets[container]) == before


def test_classify():
    record = st.FileRecord("written", "2026-01-02T03:04:05.000006Z")
    assert st.classify(None, None, "d") == (st.Origin.NEW, "new file")
    assert st.classify(record, None, "d") == (st.Origin.MISSING, "file missing")
    assert st.classify(record, "written", "d") == (st.Origin.DATA, "hieradata/template change")
    assert st.classify(record, "other", "written") == (
        st.Origin.EDITED, "edited outside render since 2026-01-02T03:04:05Z")
    assert st.classify(record, "other", "d")[1].endswith("; hieradata/template change too")
    assert st.classify(None, "other", "d")[0] is st.Origin.EDITED
    assert st.classify(record, "d", "d") == (st.Origin.NONE, "")


def test_state_round_trip_and_corrupt_file_is_an_error(tmp_path: Path):
    state = st.ServiceState()
    state.units["container:-:u.service"] = st.UnitRecord("v1:h", "t", down=True)
    ab, cd = "ab" * 32, "cd" * 32  # kept-version names are sha256s
    st.push_version(state, "/p", st.Version(ab, 1, 2, 0o640, "t1"), keep=2)
    st.push_version(state, "/p", st.Version(None, 0, 0, 0, "t2"), keep=2)
    st.push_version(state, "/p", st.Version(cd, 1, 2, 0o600, "t3"), keep=2)
    st.record_file(state, "/p", "h", "t3")
    again = st.parse(st.dumps(state), "x")
    assert again == state and [v.at for v in again.files["/p"].versions] == ["t2", "t3"]
    assert again.blobs() == {cd}
    for bad in (b"{", b'{"format": 99}', b'{"format": 1, "units": {"k": {}}}', b"[]"):
        with pytest.raises(ApplyError, match="corrupt state file"):
            st.parse(bad, tmp_path / "s.json")


def ports(tree: Tree, *values: str) -> None:
    """keystone.nspawn's extra Port= lines (network::container_defaults ``ports``), for keystone
    only: no other file changes."""
    path = tree.hieradata / "data" / "services" / "keystone.yaml"
    data = yaml.safe_load(path.read_text())
    network = yaml.safe_load((tree.hieradata / "data" / "network.yaml").read_text())
    data["network::container_defaults"] = {**network["network::container_defaults"],
                                           "ports": list(values)}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def document(tree: Tree) -> dict:
    return json.loads((tree.state / "services" / "keystone.json").read_text())


def test_change_classification_in_text_and_json(tree: Tree):
    result = render("--no-restart", "keystone", *tree.options())
    assert result.code == 2 and f"create {tree.base / CONF} (new file)" in result.out
    (tree.base / CONF).write_text((tree.base / CONF).read_text() + "debug=True\n")
    (tree.base / NSPAWN).unlink()
    ports(tree, "5001:5001")
    result = render("--noop", "keystone", *tree.options())
    assert result.code == 2, result.err
    written = st.shown(document(tree)["files"][CONF_KEY]["at"])
    assert f"would update {tree.base / CONF} (content; edited outside render since {written})" \
        in result.out
    assert f"would create {tree.base / NSPAWN} (file missing)" in result.out

    assert render("--no-restart", "keystone", *tree.options()).code == 2
    ports(tree, "5002:5002")
    result = render("--noop", "--format", "json", "keystone", *tree.options())
    files = {f["path"]: f for f in json.loads(result.out)["services"][0]["files"]}
    assert files[str(tree.base / NSPAWN)]["origin"] == "data"
    assert files[str(tree.base / NSPAWN)]["origin_text"] == "hieradata/template change"
    assert files[str(tree.base / CONF)]["origin"] == "none"


def test_versions_are_private_and_pruned(tree: Tree):
    assert render("--no-restart", "keystone", *tree.options()).code == 2
    for port in range(6000, 6004):
        ports(tree, f"{port}:{port}")
        assert render("--no-restart", "--keep-versions", "2", "keystone",
                      *tree.options()).code == 2
    record = document(tree)["files"][NSPAWN_KEY]
    assert len(record["versions"]) == 2
    blobs = tree.state / "versions" / "keystone"
    kept = {v["blob"] for r in document(tree)["files"].values() for v in r["versions"]
            if v["blob"]}  # the .nspawn's two, and securetty as the container had it
    assert {v["blob"] for v in record["versions"]} <= kept and len(kept) == 3
    assert sorted(p.name for p in blobs.iterdir()) == sorted(kept)
    assert stat.S_IMODE(blobs.stat().st_mode) == 0o700
    assert stat.S_IMODE((tree.state / "services").stat().st_mode) == 0o700
    for item in (*blobs.iterdir(), tree.state / "services" / "keystone.json"):
        assert stat.S_IMODE(item.stat().st_mode) == 0o600
    # the kept copy of a secret-bearing file is as private as the state
    conf = document(tree)["files"][CONF_KEY]
    assert conf["versions"] == [{"blob": None, "uid": 0, "gid": 0, "mode": 0,
                                 "at": conf["versions"][0]["at"]}]


def test_rollback_usage_and_nothing_to_roll_back(tree: Tree):
    assert render("--rollback", "keystone", "keystone", *tree.options()).code == 64
    assert render("--rollback", "keystone", "--all", *tree.options()).code == 64
    result = render("--rollback", "keystone", *tree.options())
    assert result.code == 4
    assert result.err.startswith("render: keystone: ") and "no earlier version" in result.err


def test_a_unit_that_fails_rolls_back_its_service_and_others_go_on(tmp_path: Path, systemctl):
    templates, roots = make_services(tmp_path)
    fake = systemctl(fail="systemd-nspawn@web.service")
    first = RealSystem(systemctl().command, tmp_path / "state")
    apply(plans(templates, roots, first, b"old\n"), first, roots, Options())
    web_conf = tmp_path / "machines/web/etc/web/a.conf"
    assert web_conf.read_bytes() == b"old\n"

    system = RealSystem(fake.command, tmp_path / "state")
    results = apply(plans(templates, roots, system), system, roots, Options())
    assert exit_code(results, False) == 6
    api, conductor, web = results
    assert not api.failed and not conductor.failed and api.restarted
    assert web.failed and web.rolled_back and web_conf.read_bytes() == b"old\n"
    assert [str(e) for e in web.errors] == [
        "systemd-nspawn@web.service: restart failed: unit is failed; rolled back 2 file(s) "
        "written by this run; restarted again: unit is failed"]
    assert (tmp_path / "machines/nova/etc/api/a.conf").read_bytes() == b"new\n"
    calls = fake.calls()  # both at once, then web again with the rolled-back files
    assert sorted(calls[:2]) == ["try-restart systemd-nspawn@nova.service",
                                 "try-restart systemd-nspawn@web.service"]
    assert calls[2:] == ["restart systemd-nspawn@web.service"]


def test_noop_decides_restarts_on_the_same_path_and_writes_no_state(tmp_path: Path, systemctl):
    fake = systemctl()
    templates, roots = make_services(tmp_path)
    system = DryRunSystem(RealSystem(fake.command, tmp_path / "state"))
    planned: list[ServicePlan] = plans(templates, roots, system)
    results = apply(planned, system, roots, Options(restart=False))
    assert exit_code(results, True) == 2 and fake.calls() == []
    assert not (tmp_path / "state").exists()
    # like a real run: each service's state before its writes (restarts owed) and after
    assert sum(line.startswith("state services/") for line in system.recorded) == 6
