"""``import jinja2`` without importing ``inspect`` and ``ast``: a sixth of what Jinja2 costs.

``jinja2.nodes`` and ``jinja2.async_utils`` import ``inspect`` (and with it ``dis``,
``tokenize``, ``linecache``), ``jinja2.filters`` takes ``getattr_static`` from it and
``jinja2.lexer`` ``ast.literal_eval``: 3-5 ms at the top of every run. They are called only to
fold a ``pass_context`` function as a constant, to run async, in the ``attr`` filter and when a
template is compiled; a full render with compiled templates usually does none of these. Until
something reads an attribute of it, each is a placeholder module; the first read imports the
real one, fills the placeholder with its names and leaves the real module in ``sys.modules``,
so later imports and earlier bindings both see the real functions. The names Jinja binds at
import are forwarders to the real ones. A process that imported one of them, or Jinja, before
gets no placeholder for it.
"""

from __future__ import annotations

import sys
import types
from typing import Any

# module -> the names Jinja takes from it by name at import (``from inspect import ...``)
DEFERRED = {"inspect": ("getattr_static",), "ast": ("literal_eval",)}


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


def _forwarder(module: _Deferred, name: str) -> Any:
    def forward(*args: Any, **kwargs: Any) -> Any:
        return getattr(module.load(), name)(*args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward


def _defer(name: str, forwarded: tuple[str, ...]) -> None:
    if name in sys.modules or "jinja2" in sys.modules:
        return
    module = _Deferred(name)
    for attribute in forwarded:
        setattr(module, attribute, _forwarder(module, attribute))
    sys.modules[name] = module


for _name, _forwarded in DEFERRED.items():
    _defer(_name, _forwarded)

import jinja2  # noqa: E402 - after the placeholder, on purpose

__all__ = ["jinja2"]
