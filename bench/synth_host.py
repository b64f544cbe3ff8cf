"""A synthetic host of many container services, for the bench's 200- and 1,000-service figures.

Shaped like the sample, at scale: a Hiera 5 tree with node, per-service and common levels;
each service its own container (``svcNNNN``) with ``files`` INI files that look up common
data (shared by every service, so one change there touches them all), its own data, a dotted
key and a Sensitive password; every file restarts its container. Rootfs trees are provisioned
as a real host has them (``etc/passwd``, ``etc/group``, the destination directories).

``build`` returns render's command-line options for the tree (roots and node, no command).
"""

from __future__ import annotations

from pathlib import Path

NODE = "node1.example.com"
HIERA = """\
version: 5
defaults: {datadir: data, data_hash: yaml_data}
hierarchy:
  - {name: per node, path: "nodes/%{trusted.certname}.yaml"}
  - {name: per service, path: "services/%{service}.yaml"}
  - {name: common, paths: [common.yaml, credentials.yaml]}
"""
COMMON = """\
lookup_options:
  '^.*::password$': {convert_to: Sensitive}
common::memcached_servers: ['192.0.2.21:11211', '192.0.2.22:11211']
common::rabbit_host: rabbit.example.com
common::endpoints: {internal: {scheme: https, host: api.example.com}}
common::debug: false
"""
PASSWD = "root:x:0:0::/root:/bin/sh\nsvc:x:163:163::/var/lib/svc:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nsvc:x:163:\n"
TEMPLATE = """\
[DEFAULT]
debug = {{ lookup('common::debug') }}
transport_url = rabbit://{{ lookup('SVC::user') }}:{{ lookup('SVC::password') }}@\
{{ lookup('common::rabbit_host') }}:5672/
[cache]
memcache_servers = {{ lookup('common::memcached_servers') | join(',') }}
[api]
endpoint = {{ lookup('common::endpoints.internal.scheme') }}://\
{{ lookup('common::endpoints.internal.host') }}:{{ lookup('SVC::port') }}/INDEX
workers = {{ lookup('SVC::workers') }}
"""


def service_name(index: int) -> str:
    return f"svc{index:04d}"


def build(base: Path, services: int, files: int = 3) -> list[str]:
    """Write the tree below ``base`` (which must not hold one yet); return render's options."""
    hieradata, templates, machines = base / "hieradata", base / "templates", base / "machines"
    for directory in (hieradata / "data" / "services", hieradata / "data" / "nodes", templates,
                      machines, base / "host"):
        directory.mkdir(parents=True)
    (hieradata / "hiera.yaml").write_text(HIERA)
    (hieradata / "data" / "common.yaml").write_text(COMMON)
    (hieradata / "data" / "nodes" / f"{NODE}.yaml").write_text("common::debug: false\n")
    credentials = []
    for index in range(services):
        name = service_name(index)
        credentials.append(f"{name}::password: secret-{name}")
        (hieradata / "data" / "services" / f"{name}.yaml").write_text(
            f"{name}::user: {name}\n{name}::port: {9000 + index}\n{name}::workers: 4\n")
        directory = templates / name
        directory.mkdir()
        entries = [f"machine: {name}", "files:"]
        for number in range(files):
            (directory / f"f{number}.conf.j2").write_text(
                TEMPLATE.replace("SVC", name).replace("INDEX", str(number)))
            entries += [f"  - template: f{number}.conf.j2",
                        f"    dest: /etc/{name}/f{number}.conf",
                        "    owner: root", "    group: svc", '    mode: "0640"',
                        "    restart: container"]
        (directory / "service.yaml").write_text("\n".join(entries) + "\n")
        rootfs = machines / name
        (rootfs / "etc" / name).mkdir(parents=True)
        (rootfs / "etc" / "passwd").write_text(PASSWD)
        (rootfs / "etc" / "group").write_text(GROUP)
    (hieradata / "data" / "credentials.yaml").write_text("\n".join(credentials) + "\n")
    return ["--hieradata", str(hieradata), "--templates", str(templates),
            "--machines-dir", str(machines), "--host-root", str(base / "host"),
            "--state-dir", str(base / "state"), "--node", NODE]


def change_common(base: Path) -> None:
    """A change to common data that every service's files read (so each container restarts)."""
    path = base / "hieradata" / "data" / "common.yaml"
    text = path.read_text()
    old, new = "rabbit.example.com", "rabbit2.example.com"
    path.write_text(text.replace(old, new) if old in text else text.replace(new, old))
