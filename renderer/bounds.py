"""Bounds: how much of the host a container or the data can make render spend.

``render`` runs as root and reads what containers own, so every read of a file a container
controls, and every expansion the data controls, has a limit. Over a limit the file (or the
service) is handled in one line, never a hang, a traceback or the host's memory:

- a destination over ``MAX_FILE`` (4 MiB; ``fstat`` before reading) is not read: it is
  replaced by the rendered file, without keeping a version and without a diff;
- a container ``/etc/passwd`` or ``/etc/group`` over ``MAX_FILE`` fails the services whose owners
  it would resolve (an owner looked up in a truncated table could resolve to the wrong user);
- ids are ASCII digits below ``MAX_ID`` (2**32 - 1, which means "no id" to the kernel);
- a YAML file's aliases may add at most ``ALIAS_NODES`` nodes to it, nested at most
  ``MAX_DEPTH`` deep ("billion laughs");
- a template renders at most ``MAX_OUTPUT`` (16 MiB) per file, ``range()`` gives at most
  ``MAX_RANGE`` items, and one file renders in at most ``TEMPLATE_SECONDS``.

Files render reads from the source state (hiera.yaml, hieradata, service.yaml, facts, templates)
must be regular files: they are opened with ``O_NONBLOCK`` and checked with ``fstat``, so a FIFO a
``glob`` level matches is refused instead of blocking the run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from renderer import manifest
from renderer.errors import HieraDataError, RenderError

MAX_FILE = 4 << 20
MAX_ID = 2**32 - 1
ALIAS_NODES = 100_000
MAX_DEPTH = 200
MAX_OUTPUT = 16 << 20
MAX_RANGE = 100_000
TEMPLATE_SECONDS = 30.0


def size_text(size: int) -> str:
    """``64.0 MiB``: sizes for people."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.1f} {unit}"
    return f"{size} bytes"


def read_bounded(fd: int, size: int, limit: int = MAX_FILE) -> bytes | None:
    """At most ``limit`` bytes of an open regular file of ``size`` bytes (its fstat), or None
    when it is (or grows, while it is read) larger: nothing beyond the limit is ever read."""
    if size > limit:
        return None
    chunks = []
    left = limit + 1
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
        chunks.append(chunk)
        left -= len(chunk)
    return None if left <= 0 else b"".join(chunks)


def parse_id(text: str) -> int | None:
    """An id as passwd, group and service.yaml spell it: ASCII digits below MAX_ID, or None
    (``str.isdigit`` alone accepts '٣' and '²')."""
    if text.isascii() and text.isdigit() and len(text) <= 10:
        value = int(text)
        if value < MAX_ID:
            return value
    return None


def read_regular(path: str | Path, error: type[RenderError]) -> bytes:
    """A source file's bytes; anything but a regular file (a FIFO, a device) is refused without
    blocking: opened with O_NONBLOCK, checked with fstat before the first read."""
    manifest.note(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error("not a regular file (a FIFO, device or directory); refusing to read it",
                        path=path)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", path=path) from exc
    finally:
        os.close(fd)


def decode(raw: bytes, path: Path, error: type[RenderError] = HieraDataError) -> str:
    """UTF-8 text, or one line naming the file and the line of the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"invalid UTF-8 byte 0x{raw[exc.start]:02x}", path=path, line=line) from exc
