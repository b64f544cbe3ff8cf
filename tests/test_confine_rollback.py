"""A container cannot undo its own confinement: the decision, with the ``systemctl`` stand-in.

The host-side ``.nspawn`` of a container is kept when the container fails its health check (its
signal comes from the container); the container-side file is rolled back, the container stays
down and is recorded ``held``, and later runs make the same decision without restarting it. The
real namespaced systemd runs the same scenario in tests/test_restart.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import render

from renderer.services import Action, ActionKind, FileSpec, Root

UNIT = "systemd-nspawn@web.service"
HELD = (f"render: web: {UNIT}: held down since {{at}} (unit is failed): it failed its health "
        "check under {nspawn}, which render keeps; not restarted until the config changes or "
        "it is started by hand\n")


def web(override: bool | None = None) -> dict[str, list[dict[str, Any]]]:
    nspawn: dict[str, Any] = {"root": "host", "dest": "/etc/systemd/nspawn/web.nspawn",
                              "text": "[Exec]\nPrivateUsers={{ lookup('pu') }}\n",
                              "restart": "container", "create_dirs": True}
    if override is not None:
        nspawn["rollback_on_failure"] = override
    return {"web": [{"dest": "/etc/web.conf", "text": "workers={{ lookup('w') }}\n",
                     "restart": "container"}, nspawn]}


def run(synth, fake, *args: str):
    return render("--systemctl", str(fake.script), "--health-timeout", "0", *args, "web",
                  *synth.options(restart=True))


def record(synth) -> dict[str, Any]:
    document = json.loads((synth.state / "services/web.json").read_text())
    return document["units"][f"container:-:{UNIT}"]


@pytest.fixture
def hardened(scratch, systemctl):
    """Written with ``PrivateUsers=no``, then the data hardens it and the container fails."""
    def make(override: bool | None = None):
        synth = scratch(web(override), data={"w": 1, "pu": "no"})
        assert run(synth, systemctl()).code == 2
        synth.set_data({"w": 2, "pu": "yes"})
        return synth
    return make


def test_failed_container_keeps_its_hardened_nspawn_and_stays_down(hardened, systemctl):
    synth = hardened()
    nspawn = synth.host / "etc/systemd/nspawn/web.nspawn"
    conf = synth.rootfs("web") / "etc/web.conf"
    fake = systemctl(fail=UNIT)
    result = run(synth, fake)
    assert result.code == 4, (result.out, result.err)
    assert result.err == (f"render: web: {UNIT}: restart failed: unit is failed; rolled back 1 "
                          "file(s) written by this run; kept 1 file(s) that confine the "
                          "container; left down until the config changes or it is started by "
                          "hand\n")
    assert f"web: note: kept {nspawn}: a container's health check does not undo its " \
        "confinement (rollback_on_failure: true to allow)\n" in result.out
    assert nspawn.read_text() == "[Exec]\nPrivateUsers=yes\n"
    assert conf.read_text() == "workers=1\n"  # container-side: rolled back as before
    assert fake.calls() == [f"try-restart {UNIT}"]  # not started again with the old confinement
    assert record(synth)["held"] is True and record(synth)["down"] is True
    service = json.loads(run(synth, fake, "--noop", "--format", "json").out)["services"][0]
    assert service["status"] == "failed" and service["notes"] == []  # noop: held, decided
    at = record(synth)["at"][:19] + "Z"
    held = HELD.format(at=at, nspawn=nspawn)

    # next run: the container-side file is written again, nothing restarts, the same decision
    fake.forget()
    again = run(synth, fake)
    assert (again.code, again.err) == (6, held), again.out
    assert "would" not in again.out and fake.calls() == []
    assert nspawn.read_text() == "[Exec]\nPrivateUsers=yes\n" and conf.read_text() == "workers=2\n"
    for args in (("--noop",), ("--no-restart",), ()):  # in sync now: the same line, exit 4
        result = run(synth, fake, *args)
        assert (result.code, result.err) == (4, held), (args, result.out)
        assert "restart" not in result.out.replace("restarted", "")
    assert fake.calls() == [] and record(synth)["held"] is True

    # started by hand with the kept files: recorded healthy, nothing restarted
    up = systemctl()
    result = run(synth, up)
    assert (result.code, result.err) == (0, ""), result.out
    assert f"web: note: {UNIT} is active again (started outside render) with the kept files: " \
        "recorded" in result.out
    assert "held" not in record(synth) and "down" not in record(synth)
    assert up.calls() == [] and run(synth, up).out.startswith("render: everything in sync")


def test_a_config_change_restarts_a_held_container(hardened, systemctl):
    synth = hardened()
    result = run(synth, systemctl(fail=UNIT), "--format", "json")
    assert result.code == 4
    service = json.loads(result.out)["services"][0]
    nspawn = str(synth.host / "etc/systemd/nspawn/web.nspawn")
    assert service["kept"] == [nspawn] and service["rolled_back"] == [
        str(synth.rootfs("web") / "etc/web.conf")]
    assert service["notes"] == [f"kept {nspawn}: a container's health check does not undo its "
                                "confinement (rollback_on_failure: true to allow)"]
    assert service["status"] == "failed" and json.loads(result.out)["exit_code"] == 4
    synth.set_data({"w": 2, "pu": "no"})  # the operator reverts the hardening in the data
    fake = systemctl()
    result = run(synth, fake)
    assert result.code == 2, (result.out, result.err)
    assert f"restart {UNIT} (config changed since render held it down at" in result.out
    assert fake.calls() == [f"restart {UNIT}"]
    assert "held" not in record(synth)


def test_override_restores_the_old_rollback(hardened, systemctl):
    synth = hardened(override=True)
    nspawn = synth.host / "etc/systemd/nspawn/web.nspawn"
    fake = systemctl(fail=UNIT)
    result = run(synth, fake)
    assert result.code == 4
    assert result.err == (f"render: web: {UNIT}: restart failed: unit is failed; rolled back 2 "
                          "file(s) written by this run; restarted again: unit is failed\n")
    assert nspawn.read_text() == "[Exec]\nPrivateUsers=no\n" and "kept" not in result.out
    assert fake.calls() == [f"try-restart {UNIT}", f"restart {UNIT}"]
    assert "held" not in record(synth) and record(synth)["down"] is True


def test_override_keeps_a_container_side_file(hardened, systemctl):
    synth = hardened()
    definition = synth.templates / "web/service.yaml"
    definition.write_text(definition.read_text().replace(
        "restart: container\n  template: f0.j2", "restart: container\n  rollback_on_failure: "
        "false\n  template: f0.j2", 1))
    assert "rollback_on_failure: false" in definition.read_text()
    result = run(synth, systemctl(fail=UNIT))
    assert result.code == 4 and "kept 2 file(s)" in result.err, result.err
    assert (synth.rootfs("web") / "etc/web.conf").read_text() == "workers=2\n"


def test_a_host_unit_failure_still_rolls_back(scratch, systemctl):
    """A host unit's health check does not come from a container: everything is put back."""
    synth = scratch({"web": [{"root": "host", "dest": "/etc/systemd/network/mv-a.network",
                              "text": "{{ lookup('w') }}\n", "restart": "host:systemd-networkd",
                              "create_dirs": True}]},
                    data={"w": 1})
    assert run(synth, systemctl()).code == 2
    synth.set_data({"w": 2})
    result = run(synth, systemctl(fail="systemd-networkd.service"))
    assert result.code == 4 and "rolled back 1 file(s)" in result.err, result.err
    assert (synth.host / "etc/systemd/network/mv-a.network").read_text() == "1\n"


def spec(root: Root, dest: str, *actions: Action, override: bool | None = None) -> FileSpec:
    return FileSpec("t.j2", Path(dest), root, None, None, None, actions, False, False, "none",
                    None, rollback_on_failure=override)  # type: ignore[arg-type]


CONTAINER = Action(ActionKind.CONTAINER, UNIT)
HOST = Action(ActionKind.HOST, "foo.service")


@pytest.mark.parametrize(("file", "rollback"), [
    (spec(Root.HOST, "/etc/systemd/nspawn/web.nspawn"), False),
    (spec(Root.HOST, "/etc/systemd/network/10-mv.network", HOST), False),
    (spec(Root.HOST, "/etc/systemd/system/systemd-nspawn@web.service.d/x.conf"), False),
    (spec(Root.HOST, "/etc/web/anything.conf", CONTAINER), False),
    (spec(Root.HOST, "/etc/web/anything.conf", HOST), True),
    (spec(Root.HOST, "/etc/web/x.conf", Action(ActionKind.HOST, "systemd-nspawn@web.service")),
     False),
    (spec(Root.HOST, "/etc/systemd/system/systemd-nspawn@.service.d/x.conf"), False),
    (spec(Root.CONTAINER, "/etc/systemd/network/80-host0.network", CONTAINER), True),
    (spec(Root.HOST, "/etc/systemd/nspawn/web.nspawn", override=True), True),
    (spec(Root.CONTAINER, "/etc/web.conf", CONTAINER, override=False), False),
])
def test_which_files_a_failed_health_check_keeps(file: FileSpec, rollback: bool):
    assert file.rollback is rollback


def test_rollback_on_failure_must_be_a_flag(scratch):
    synth = scratch({"web": [{"dest": "/etc/web.conf", "rollback_on_failure": "no"}]})
    result = render("web", *synth.options())
    assert result.code == 4
    assert result.err.endswith("rollback_on_failure must be true or false, not 'no'\n"), \
        result.err


def test_rollback_by_the_operator_restores_the_kept_file(hardened, systemctl):
    """``--rollback`` is an explicit operator action: it puts the old confinement back."""
    synth = hardened()
    assert run(synth, systemctl(fail=UNIT)).code == 4
    fake = systemctl()
    result = render("--systemctl", str(fake.script), "--health-timeout", "0", "--rollback", "web",
                    *synth.options(restart=True))
    assert result.code == 2, (result.out, result.err)
    assert (synth.host / "etc/systemd/nspawn/web.nspawn").read_text() == \
        "[Exec]\nPrivateUsers=no\n"
    assert fake.calls() == [f"restart {UNIT}"] and "held" not in record(synth)


def test_a_held_container_started_by_hand_restarts_for_the_files_written_since(hardened,
                                                                              systemctl):
    """Started by hand before the next run rewrote its rolled-back files: it runs the old ones,
    so that run restarts it (a plain change), and does not record it as up to date."""
    synth = hardened()
    assert run(synth, systemctl(fail=UNIT)).code == 4
    up = systemctl()
    result = run(synth, up)
    assert result.code == 2, (result.out, result.err)
    assert f"restart {UNIT} (files changed)" in result.out
    assert up.calls() == [f"try-restart {UNIT}"] and "held" not in record(synth)


def test_a_host_restart_of_the_container_unit_is_the_containers_signal(scratch, systemctl):
    """``host:systemd-nspawn@web`` restarts the container as ``container`` does."""
    synth = scratch({"web": [{"root": "host", "create_dirs": True,
                              "dest": "/etc/systemd/system/systemd-nspawn@web.service.d/x.conf",
                              "text": "{{ lookup('w') }}\n",
                              "restart": "host:systemd-nspawn@web"}]}, data={"w": 1})
    assert run(synth, systemctl()).code == 2
    synth.set_data({"w": 2})
    result = run(synth, systemctl(fail=UNIT))
    assert result.code == 4, result.err
    assert result.err == (f"render: web: {UNIT}: restart failed: unit is failed; kept 1 file(s) "
                          "that confine the container; left down until the config changes or "
                          "it is started by hand\n")
    assert (synth.host / "etc/systemd/system/systemd-nspawn@web.service.d/x.conf").read_text() \
        == "2\n"


def test_two_services_of_one_held_container_do_not_restart_it(scratch, systemctl):
    """The other service's rolled-back files are written again next run; it holds too."""
    services = web()
    services["app"] = [{"dest": "/etc/app.conf", "machine": "web", "restart": "container",
                        "text": "app={{ lookup('w') }}\n"}]
    synth = scratch(services, data={"w": 1, "pu": "no"})
    every = ("--all", *synth.options(restart=True))
    assert render("--systemctl", str(systemctl().script), *every).code == 2
    synth.set_data({"w": 2, "pu": "yes"})
    fake = systemctl(fail=UNIT)
    first = render("--systemctl", str(fake.script), "--health-timeout", "0", *every)
    assert first.code == 4 and fake.calls() == [f"try-restart {UNIT}"], first.err
    assert (synth.rootfs("web") / "etc/app.conf").read_text() == "app=1\n"
    for code in (6, 4):
        fake.forget()
        result = render("--systemctl", str(fake.script), "--health-timeout", "0", *every)
        assert result.code == code and fake.calls() == [], (result.out, result.err)
        assert result.err.count("held down since") == 2, result.err
    assert (synth.rootfs("web") / "etc/app.conf").read_text() == "app=2\n"
    assert "the kept files of systemd-nspawn@web.service" in result.err
