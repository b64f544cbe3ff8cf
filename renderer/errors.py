"""The one exception hierarchy of render.

Every failure an operator can cause (bad data, bad template, a full disk, a unit that will not
start) is a RenderError. Each carries where it happened (``path``, ``line``, ``column``) so the CLI
can print one line, ``render: <service>: <path>:<line>: <message>``, and an ``exit_code`` so the
CLI never has to guess. Anything that is not a RenderError is a bug in render: it fails its
service (``InternalError``), or the run with exit 70 when it happens outside a service.

Context is added on the way up by ``with_context``, which returns a copy: an error may be shared
(one broken hiera.yaml fails every service) and must not be edited in place. Classes also inherit
the builtin they stand for where one fits (``ServiceError`` is a ``ValueError``), as pyinfra's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

_E = TypeVar("_E", bound="RenderError")


class RenderError(Exception):
    """Root of every expected failure; ``str()`` is the one-line message without the service."""

    exit_code = 4

    def __init__(self, message: str, *, path: object = None, line: int | None = None,
                 column: int | None = None, service: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        self.service = service
        self.via: str | None = None  # the macro's ``file:line`` when path:line is its caller

    def with_context(self: _E, *, service: str | None = None, path: object = None,
                     line: int | None = None) -> _E:
        """A copy that also says where: fields already known are kept, not overwritten."""
        import copy  # an error is rare: its copy is not worth a module at every start

        other = copy.copy(self)
        if service is not None and other.service is None:
            other.service = service
        if path is not None and other.path is None:
            other.path, other.line = str(path), line
        return other

    def where(self) -> str:
        """``path:line:column`` with the parts that are known, or ``''``."""
        if self.path is None:
            return ""
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.where()
        if where and self.via:
            where = f"{where} (via {self.via})"
        return f"{where}: {self.message}" if where else self.message


class ServiceErrors(RenderError):
    """Every error one step found in a service, raised once so the service fails with all of
    them (an operator fixes them in one go, not one per run; confd returned only the last)."""

    def __init__(self, errors: Sequence[RenderError]) -> None:
        super().__init__(errors[0].message, path=errors[0].path, line=errors[0].line)
        self.errors = list(errors)

    def __reduce__(self) -> tuple[Any, ...]:
        """Copied (``with_context``) from its errors, not from ``args`` (one message)."""
        return (type(self), (self.errors,), self.__dict__)

    def with_context(self, *, service: str | None = None, path: object = None,
                     line: int | None = None) -> ServiceErrors:
        other = super().with_context(service=service, path=path, line=line)
        other.errors = [e.with_context(service=service, path=path, line=line)
                        for e in self.errors]
        return other


def each_error(error: RenderError) -> list[RenderError]:
    """The errors ``error`` stands for: itself, or those a ServiceErrors holds."""
    return list(error.errors) if isinstance(error, ServiceErrors) else [error]


def raise_all(errors: Sequence[RenderError]) -> None:
    """Raise the one error, or all of them as ServiceErrors; nothing when there are none. The
    same line twice is said once (a broken data file fails every template that reads it)."""
    unique = list({(type(e), e.service, str(e), e.via): e
                   for error in errors for e in each_error(error)}.values())
    if len(unique) == 1:
        raise unique[0]
    if unique:
        raise ServiceErrors(unique)


class UsageError(RenderError, ValueError):
    """Bad command line. 64 (EX_USAGE), never 2, because 2 means "changes"."""

    exit_code = 64


class InternalError(RenderError):
    """An unexpected exception: a bug in render. It fails its service, never the whole run."""

    exit_code = 70

    @classmethod
    def from_exception(cls, exc: BaseException) -> InternalError:
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        return cls(f"internal error: {type(exc).__name__}{where}; this is a bug in render, "
                   "please report it with the command that ran")


def error_line(error: RenderError) -> str:
    """The one line an operator sees: ``render: <service>: <path>:<line>: <message>``, with
    control characters escaped (a path from a container cannot forge a second line)."""
    from renderer.names import printable

    service = f"{error.service}: " if error.service else ""
    return printable(f"render: {service}{error}")


# --- hieradata ---------------------------------------------------------------------------------

class HieraError(RenderError):
    """Anything wrong while resolving hieradata."""


class HieraConfigError(HieraError):
    """hiera.yaml is missing, unreadable or not a valid version 5 configuration."""


class HieraDataError(HieraError, ValueError):
    """A data file cannot be read: YAML syntax, non-UTF-8 bytes, a value type Puppet rejects."""


class LookupNotFound(HieraError, LookupError):
    """The key has no value at any level and no default was given."""

    def __init__(self, key: str, **kwargs: Any) -> None:
        super().__init__(f"Function lookup() did not find a value for the name '{key}'", **kwargs)
        self.key = key


class InterpolationError(HieraError):
    """Bad ``%{...}``: syntax, unknown function, alias() not alone in its string."""


class HieraRecursionError(InterpolationError):
    """An interpolation loop, reported with the cycle like Puppet does."""


class MergeError(HieraError):
    """Values at two levels cannot be merged with the requested strategy."""


class KeySyntaxError(HieraError, ValueError):
    """A lookup key that is not valid (``a..b``, ``h.``, an unclosed quote)."""


class DigError(HieraError, LookupError):
    """A dotted key digs into a value that is not a hash or array."""


class ConversionError(HieraError, TypeError):
    """``lookup_options`` ``convert_to`` could not convert the value."""


# --- service definitions, templates, validation ---------------------------------------------

class ServiceError(RenderError, ValueError):
    """service.yaml is missing, unknown or invalid."""


class TemplateError(RenderError):
    """Jinja2 syntax error, undefined variable, missing hiera key while rendering."""


class OverrideError(RenderError):
    """An INI override in hieradata (``<service>::config::<file>``) that cannot be applied."""


class ValidationError(RenderError, ValueError):
    """A rendered file is not acceptable (for example an INI file that oslo.config rejects)."""


# --- applying ------------------------------------------------------------------------------------

class ApplyError(RenderError):
    """Writing a file or reaching systemd failed."""


class UnsafePathError(ApplyError):
    """A destination would leave its root, or is a symlink, device or FIFO."""


class MissingRootError(ApplyError):
    """A container rootfs (the machine is not provisioned yet) or the host root is missing."""


class MissingDirectoryError(ApplyError):
    """A destination's directory does not exist and the definition does not allow creating it."""


class RestartError(ApplyError):
    """A unit could not be (re)started."""


class LockError(ApplyError):
    """Another render run holds the lock."""


# --- render preview --------------------------------------------------------------------------

class PreviewError(RenderError):
    """A revision git cannot give, or node facts that cannot be read: the preview fails (4)."""
