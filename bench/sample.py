"""The sample deployment as the bench measures it: a copy of hieradata/ and service_templates/
plus ``lookupbench``, a lookup-heavy service."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def sample_options(base: Path) -> list[str]:
    """Copy the sample below ``base``; return render's options for it (``--node`` last)."""
    shutil.copytree(REPO / "hieradata", base / "hieradata")
    shutil.copytree(REPO / "service_templates", base / "templates")
    stand_in_probes(base / "hieradata")
    (base / "host").mkdir()
    return ["--hieradata", str(base / "hieradata"), "--templates", str(base / "templates"),
            "--machines-dir", str(base / "machines"), "--host-root", str(base / "host"),
            "--state-dir", str(base / "state"), "--node", "controller1.example.com"]


def stand_in_probes(hieradata: Path) -> None:
    """The sample's galera and RabbitMQ policies with a probe that passes: a set-up run's
    container restarts roll (renderer.rolling), and no container runs here to probe."""
    for service in ("mariadb", "rabbitmq"):
        with (hieradata / "data" / "services" / f"{service}.yaml").open("a") as data:
            data.write(f"{service}::restart_policy:\n  policy: rolling\n"
                       f"  group: {{lookup: {service}::cluster::name}}\n"
                       "  probe: {command: [/bin/true]}\n")


LOOKUPS = 200


def add_lookup_heavy_service(hieradata: Path, templates: Path) -> None:
    """A service whose one file makes LOOKUPS lookups over four levels: first-found keys, deep
    merges from lookup_options, dotted keys, interpolated values and Sensitive secrets; the data
    is spread over extra node, service and OS files next to the sample's."""
    data = hieradata / "data"
    lines = ["lookup_options:", "  '^bench::merged': {merge: deep}",
             "  '^bench::.*password$': {convert_to: Sensitive}"]
    for i in range(LOOKUPS // 4):
        lines += [f"bench::plain{i}: value{i}", f"bench::merged{i}: {{a: {i}, list: [{i}]}}",
                  f"bench::nested{i}: {{inner: {{port: {8000 + i}}}}}",
                  f"bench::password{i}: secret{i}"]
    (data / "bench_common.yaml").write_text("\n".join(lines) + "\n")
    node = [f"bench::merged{i}: {{b: '%{{trusted.certname}}', list: [n{i}]}}"
            for i in range(LOOKUPS // 4)]
    (data / "nodes" / "controller1.example.com.yaml").open("a").write(
        "\n" + "\n".join(node) + "\n")
    hiera = hieradata / "hiera.yaml"
    text = hiera.read_text()
    assert "      - common.yaml\n" in text, "bench: the common level of hiera.yaml changed"
    hiera.write_text(text.replace("      - common.yaml\n",
                                  "      - common.yaml\n      - bench_common.yaml\n"))
    service = templates / "lookupbench"
    service.mkdir()
    (service / "service.yaml").write_text(
        "files:\n  - template: bench.conf.j2\n    dest: /etc/bench/bench.conf\n")
    (service / "bench.conf.j2").write_text(
        f"{{% for i in range({LOOKUPS // 4}) %}}\n"
        "plain{{ i }} = {{ lookup('bench::plain' ~ i) }}\n"
        "merged{{ i }} = {{ lookup('bench::merged' ~ i) }}\n"
        "port{{ i }} = {{ lookup('bench::nested' ~ i ~ '.inner.port') }}\n"
        "password{{ i }} = {{ lookup('bench::password' ~ i) }}\n"
        "{% endfor %}\n")
