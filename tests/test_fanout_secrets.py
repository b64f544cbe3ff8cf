"""What a planning worker did not know (renderer.fanout.Secrets): a text none of those secrets
touches is masked the same with or without them, so the parent need not ask the masker again."""

from __future__ import annotations

import random

from renderer.fanout import Secrets
from renderer.masking import Masker

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
