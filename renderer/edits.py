"""Edits: destinations made from what is there, not from a template (``link:``, ``line:`` and
``password:`` entries of service.yaml).

The nspawn notes ask three things of every container besides its config files: a unit enabled
at boot (a symlink in ``multi-user.target.wants``), ``pts/0`` in ``/etc/securetty`` (a file the
container's packages own) and a root password. Each is planned as a whole file would be: the
*argument* (the link's target, the line, the hash) is resolved where templates are rendered, the
actual bytes are observed through the System, and ``desired`` turns the two into the bytes the
destination should hold. From there the stage, commit, rollback, state and restart machinery is
the one every file goes through: a line is appended to the current bytes and the file replaced
atomically, its owner and mode kept; a password changes root's second field of ``/etc/shadow``
and nothing else. As Puppet's ``file_line`` does, a line or a password is never written into a
file that does not exist: that is an error naming the file, in ``--noop`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from renderer.errors import ApplyError, LookupNotFound, TemplateError
from renderer.hiera import NOT_GIVEN, Sensitive
from renderer.masking import secret_strings
from renderer.services import FileSpec, Kind, Service
from renderer.system import Actual
from renderer.templates import Rendered

# crypt(5) prefixes: md5, bcrypt, sha256, sha512, scrypt, yescrypt, gost-yescrypt, sha1
_CRYPT = re.compile(r"\$(1|2[abxy]|5|6|7|y|gy|sha1)\$[./0-9A-Za-z$=,]{8,1000}\Z")
PASSWORD_NOTE = "password of {account} changed (hash not shown)"


def render_edits(service: Service, lookup: Callable[..., Any], secrets: set[str]
                 ) -> list[Rendered]:
    """The argument of each edit of ``service``, as bytes (a password's hash added to
    ``secrets``). ``lookup(key, merge=None, default=...)`` is the templates' lookup."""
    return [Rendered(spec, _argument(spec, service, lookup, secrets))
            for spec in service.files if spec.edit]


def _argument(spec: FileSpec, service: Service, lookup: Callable[..., Any],
              secrets: set[str]) -> bytes:
    if spec.kind is not Kind.PASSWORD:
        return spec.argument.encode()
    def fail(message: str) -> TemplateError:
        return TemplateError(message, path=spec.source or service.definition, line=spec.line,
                             service=service.name)

    try:
        value = lookup(spec.argument, merge=None, default=NOT_GIVEN)
    except LookupNotFound as exc:
        raise fail(f"hiera key '{exc.key}' not found and no default given") from exc
    raw = value.value if isinstance(value, Sensitive) else value
    if isinstance(raw, str):
        secrets.update(secret_strings(raw))  # masked everywhere, Sensitive in the data or not
    if not isinstance(raw, str) or not _CRYPT.match(raw):
        # never the value: it is a secret, or a plaintext password typed in by mistake
        raise fail(f"hiera key '{spec.argument}' is not a crypt hash ($6$..., $y$...): "
                   f"refusing it as the password of {spec.account}")
    return raw.encode()


def desired(spec: FileSpec, argument: bytes, actual: Actual | None, display: str) -> bytes:
    """The bytes the destination should hold: the edit applied to what is there."""
    if spec.kind is Kind.LINK:
        return argument
    if actual is None:  # as Puppet's file_line: the file belongs to the container's packages
        raise ApplyError(f"does not exist: a {spec.kind.value} entry edits a file, it does not "
                         "create one", path=display)
    if actual.oversize:
        raise ApplyError("is over the size limit: it cannot be edited", path=display)
    if spec.kind is Kind.LINE:
        return with_line(actual.data, argument)
    return with_password(actual.data, spec.account, argument, display)


def with_line(data: bytes, line: bytes) -> bytes:
    """``data`` with ``line`` appended unless a line of it is already exactly that."""
    if line in data.splitlines():
        return data
    return data + (b"\n" if data and not data.endswith(b"\n") else b"") + line + b"\n"


def with_password(data: bytes, account: str, hashed: bytes, display: str) -> bytes:
    """``data`` (a shadow file) with the second field of ``account``'s line set to ``hashed``;
    every other byte as it was."""
    lines = data.split(b"\n")
    prefix = account.encode() + b":"
    for index, line in enumerate(lines):
        if line.startswith(prefix):
            fields = line.split(b":")
            if len(fields) < 2:
                break
            fields[1] = hashed
            lines[index] = b":".join(fields)
            return b"\n".join(lines)
    raise ApplyError(f"has no entry for {account!r}: its password cannot be set", path=display)
