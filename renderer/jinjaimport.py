"""``import jinja2`` without ``inspect``, ``ast`` and OpenSSL: a fifth of what Jinja2 costs.

Jinja's modules import ``inspect`` (and with it ``dis``, ``tokenize``, ``linecache``), take
``getattr_static`` from it and ``literal_eval`` from ``ast``, and ``sha1`` from ``hashlib``
(which loads libcrypto through ``_hashlib``), ``jinja2.bccache`` imports ``tempfile`` and
``jinja2.utils`` ``random``: 6-8 ms at the top of every full run. They call them only to fold a
``pass_context`` function as a constant, to run async, in the ``attr`` filter, when a template
is compiled, (``sha1``) for the template cache's keys, (``tempfile``) for the directory of a
cache render does not use and (``random``) in ``lipsum()`` and the ``random`` filter.

Until something reads an attribute of it, each of those modules is a placeholder; the first
read imports the real one, fills the placeholder with its names and leaves the real module in
``sys.modules``, so later imports and earlier bindings both see the real functions. The names
Jinja binds at import are forwarders to the real functions, except ``sha1``: that is the
interpreter's built-in ``_sha1.sha1``, the same digest ``hashlib`` gives (it is what hashlib
itself falls back to without OpenSSL). A process that imported one of these modules, or Jinja,
before gets no placeholder for it.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

# module -> the names Jinja takes from it at import (``from inspect import ...``): None for a
# forwarder to the real function, else the stand-in to bind
DEFERRED: dict[str, dict[str, Callable[..., Any] | None]] = {
    "inspect": {"getattr_static": None},
    "ast": {"literal_eval": None},
    "hashlib": {"sha1": None},
    "tempfile": {},  # FileSystemBytecodeCache's default directory: render has its own cache
    "random": {"choice": None, "randrange": None},  # lipsum() and the random filter
}
try:
    from _sha1 import sha1 as _builtin_sha1

    DEFERRED["hashlib"]["sha1"] = _builtin_sha1
except ImportError:  # pragma: no cover - an interpreter built without it: forward
    pass


class _Deferred(types.ModuleType):
    """A module until its first attribute read, then a copy of the real one."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system asks for __path__, __spec__...
            raise AttributeError(name)
        return getattr(self.load(), name)

    def load(self) -> types.ModuleType:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = __import__(self.__name__)
        self.__dict__.update(real.__dict__)
        return real


def _forwarder(module: _Deferred, name: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(module.load(), name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward


def _defer(name: str, bound: dict[str, Callable[..., Any] | None]) -> None:
    if name in sys.modules or "jinja2" in sys.modules:
        return
    module = _Deferred(name)
    for attribute, stand_in in bound.items():
        setattr(module, attribute, stand_in or _forwarder(module, attribute))
    sys.modules[name] = module


for _name, _bound in DEFERRED.items():
    _defer(_name, _bound)

import jinja2  # noqa: E402 - after the placeholders, on purpose

__all__ = ["jinja2"]
