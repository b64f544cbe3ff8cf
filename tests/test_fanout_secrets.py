"""What a planning worker did not know (renderer.fanout.Secrets): a text none of those secrets
touches is masked the same with or without them, so the parent need not ask the masker again."""

from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

import pytest

from renderer import cli, fanout
from renderer import runner as runner_module
from renderer.fanout import Secrets
from renderer.masking import Masker
from renderer.plan import ServicePlan
from renderer.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import synth_host  # noqa: E402

TAG = r"<redacted>#[0-9a-f]{8}"

PEM = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nab\n-----END KEY-----"


def test_touching_names_values_held_whole_or_by_a_line() -> None:
    secrets = Secrets()
    secrets.add(["svc0001-db-S3cret", "svc0002-db-S3cret", "xy", PEM, "a\0b"])
    assert len(secrets) == 5
    text = "[db]\nconnection=mysql://u:svc0002-db-S3cret@h/x\nkey=xy\n"
    assert secrets.touching(text) == {"svc0002-db-S3cret", "xy", "a\0b"}
    assert secrets.touching("  MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n") == {PEM, "a\0b"}
    assert secrets.touching("ab\n") == {PEM, "a\0b"}  # a short line of it: masked as a line
    assert secrets.touching("svc0001-db-S3cre") == {"a\0b"}


def _text(rng: random.Random, words: list[str]) -> str:
    lines = ["[DEFAULT]"]
    for _ in range(rng.randint(1, 8)):
        value = "".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        lines.append(rng.choice([f"opt{rng.randint(0, 3)}={value}", f"password = {value}",
                                 f"url=rabbit://u:{value}@host", value, f"  {value}"]))
    return "\n".join(lines) + "\n"


def test_secrets_that_touch_nothing_change_no_secret_name() -> None:
    rng = random.Random(11)
    checked = 0
    words = ["svc0", "svc01-pw", "S3cret", "ab", "-", ":", "=", " ", "MIIEvQIBADANBgkq", "x"]
    for _ in range(400):
        known = ["".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
                 for _ in range(rng.randint(0, 3))]
        unseen = ["".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
                  for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            unseen.append("\n".join(unseen))
        text = _text(rng, words)
        index = Secrets()
        index.add(unseen)
        if index.touching(text) - set(known):
            continue  # the parent asks the masker again
        assert Masker(b"k", known).secret_names(text) == \
            Masker(b"k", known + unseen).secret_names(text), (known, unseen, text)
        checked += 1
    assert checked > 100  # the case the parent skips is the common one here, as on a host


def test_parallel_plans_are_the_serial_ones_with_secrets_of_earlier_slices_and_a_dead_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every service of the 80 holds svc0003's password, which only svc0003 reads as a
    secret (the workers of later slices never learn it: the parent masks their files again);
    then the worker of the last slice dies (the parent plans it): the plans and the report are
    the serial run's."""
    options = synth_host.build(tmp_path / "host", 80)
    credentials = tmp_path / "host" / "hieradata" / "data" / "credentials.yaml"
    password = re.search(r"^svc0003::database::password: '(.+)'$", credentials.read_text(),
                         re.MULTILINE)
    assert password is not None
    for template in (tmp_path / "host" / "templates").glob("svc*/svc*-1.conf.j2"):
        template.write_text(template.read_text() + f"peer={password[1]}\n")
    assert fanout.cores() > 1, "this test needs two cores"

    planned: list[list[object]] = []
    plan_all = runner_module.plan_all

    def keep(runner: Runner, names: list[str]) -> list[ServicePlan]:
        plans = plan_all(runner, names)
        planned.append([(plan.service, str(plan.errors), [
            (f.path, f.kind, f.data, f.uid, f.gid, f.mode, sorted(f.secret_names),
             sorted(f.masked_names)) for f in plan.files]) for plan in plans])
        return plans

    def run() -> tuple[int, str, str, list[object]]:
        code = cli.main(["--noop", "--diff", "--all", "--no-fast-path", *options])
        out, err = capsys.readouterr()  # a --noop without a host key: any key
        return code, re.sub(TAG, "<redacted>", out), err, planned.pop()

    monkeypatch.setattr(runner_module, "plan_all", keep)
    monkeypatch.setattr(fanout, "MIN_SERVICES", 10**9)
    serial = run()
    monkeypatch.setattr(fanout, "MIN_SERVICES", 64)
    assert run() == serial
    work, dies = fanout._work, fanout._slices(80, min(fanout.cores(), 8))[-1][0]

    def dying(start: int, stop: int) -> object:
        if start == dies:
            os._exit(3)
        return work(start, stop)

    monkeypatch.setattr(fanout, "_work", dying)
    assert run() == serial
    assert serial[0] == 2 and serial[1].count("peer=<redacted>") > 70
    assert sum("database.peer" in str(plan) for plan in serial[3]) > 70
