"""neutron 29's agents create network namespaces in a real systemd-nspawn container.

The rendered ``neutron-agents.nspawn`` is the container's settings file, as
``systemd-nspawn@neutron-agents.service`` would read it from ``/etc/systemd/nspawn``; the test
appends read-only binds of ``/usr``, the OpenStack virtualenv and its Python (the container's
OS, standing in for Debian's neutron packages). In it, ``tests/netns_probe.py`` runs neutron's
own privileged ``create_netns`` (privsep daemon, pyroute2) and the agents' next steps. Each
container runs inside ``unshare --mount`` with a fresh tmpfs on ``/run``, so nspawn's locks,
its propagation directory and the host-side bind sources never touch the machine's ``/run``;
``/var/lib/machines`` and ``/etc/systemd/nspawn`` are not used (``--settings=trusted`` reads
the copy in that private ``/run/systemd/nspawn``).

Measured with the settings the reference notes give (no ``Capability=``, the host's
``/var/run/netns`` bound in): the namespace is created (nspawn keeps CAP_SYS_ADMIN and allows
mount/unshare), but ``ip netns exec ... ip link`` fails (nspawn grants CAP_NET_ADMIN only with a
private network) and the ``link_cmd`` privsep daemon cannot start; the bind leaves an empty file
on the host, which the next container start takes for an existing namespace that no command can
enter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Tree, render

pytestmark = pytest.mark.slow  # real systemd-nspawn containers, neutron from .venv-oslo

OSLO_PYTHON = REPO / ".venv-oslo" / "bin" / "python"
PROBE = REPO / "tests" / "netns_probe.py"
MACHINE = "neutron-agents"
# the reference notes' settings (../shared/REFERENCE-CONFIGS.md), host paths made scratch paths
NOTES_NSPAWN = "[Exec]\nPrivateUsers=no\n\n[Network]\nPrivate=no\n\n[Files]\n" \
               "Bind={netns}:/var/run/netns\nBind=/proc:/hostproc\n"


def oslo_paths() -> list[Path]:
    """The virtualenv and the interpreter it runs on, resolved (binds need real paths)."""
    assert OSLO_PYTHON.exists(), f"{OSLO_PYTHON} is missing: run make test (it installs it)"
    done = subprocess.run([str(OSLO_PYTHON), "-c", "import sys; print(sys.prefix); "
                           "print(sys.base_prefix)"], capture_output=True, text=True, check=True)
    return [Path(line).resolve() for line in done.stdout.split()]


def rootfs(base: Path) -> Path:
    """An empty OS tree: merged /usr (bound from the machine, read-only) and mount points."""
    root = base / MACHINE
    for name in ("usr", "etc", "run", "proc", "sys", "dev", "tmp", "var", "root"):
        (root / name).mkdir(parents=True)
    for name in ("bin", "lib", "lib64", "sbin"):
        (root / name).symlink_to(f"usr/{name}")
    (root / "var/run").symlink_to("../run")
    for name in ("passwd", "group"):
        (root / "etc" / name).write_text(Path("/etc", name).read_text())
    return root


def settings(rendered: str) -> str:
    venv, base = oslo_paths()
    extra = "".join(f"BindReadOnly={path}\n" for path in ("/usr", venv, base))
    return f"{rendered}\n[Files]\n{extra}BindReadOnly={PROBE}:/probe.py\n"


def run_container(base: Path, nspawn: str, name: str, host_dirs: tuple[str, ...] = ()) -> dict:
    """One container with ``nspawn`` as its settings; the probe's JSON."""
    root = base / MACHINE if (base / MACHINE).exists() else rootfs(base)
    (base / f"{MACHINE}.nspawn").write_text(nspawn)
    venv = oslo_paths()[0]
    script = "\n".join([
        "set -e", "mount -t tmpfs tmpfs /run", "mkdir -p /run/systemd/nspawn",
        *(f"mkdir -p {d}" for d in host_dirs),
        f"cp {base}/{MACHINE}.nspawn /run/systemd/nspawn/",
        f"exec timeout 120 systemd-nspawn --quiet --settings=trusted --register=no --keep-unit "
        f"--machine={MACHINE} --directory={root} --setenv=PATH={venv}/bin:/usr/sbin:/usr/bin "
        f"{venv}/bin/python /probe.py {name}"])
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def rendered(tree: Tree) -> str:
    result = render("--no-restart", "neutron", *tree.options())
    assert (result.code, result.err) == (2, ""), result.err
    return (tree.host / f"etc/systemd/nspawn/{MACHINE}.nspawn").read_text()


def test_agents_create_and_use_namespaces_in_the_rendered_container(rendered: str,
                                                                     tmp_path: Path):
    assert "\nCapability=CAP_NET_ADMIN\n" in rendered and "netns" not in rendered
    result = run_container(tmp_path, settings(rendered), "qrouter-render",
                           host_dirs=("/run/openvswitch",))
    assert result == {"sys_admin": True, "net_admin": True, "create": "ok", "listed": True,
                      "nsfs": True, "exec": [0, ""], "link": "ok"}, result


def test_the_notes_settings_fail_on_this_path(tmp_path: Path):
    """Without CAP_NET_ADMIN the agents cannot touch a link; the host bind leaves a stale file."""
    netns = tmp_path / "host-netns"
    netns.mkdir()
    nspawn = settings(NOTES_NSPAWN.format(netns=netns))
    first = run_container(tmp_path, nspawn, "qrouter-notes")
    assert (first["create"], first["listed"], first["nsfs"]) == ("ok", True, True), first
    assert (first["sys_admin"], first["net_admin"]) == (True, False), first
    assert first["exec"][0] != 0 and "Operation not permitted" in first["exec"][1], first
    assert "FailedToDropPrivileges" in str(first["link"]), first
    stale = netns / "qrouter-notes"  # the container is gone; its namespace mount with it
    assert stale.is_file() and stale.stat().st_size == 0
    again = run_container(tmp_path, nspawn, "qrouter-notes")
    assert (again["create"], again["listed"], again["nsfs"]) == ("ok", True, False), again
    assert again["exec"][0] != 0, again  # "exists", and nothing can enter it


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
