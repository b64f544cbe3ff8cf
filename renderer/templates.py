"""Templates: render a service's files in memory with Jinja2.

Undefined is strict: a missing variable or hiera key is an error naming the key and the template's
file and line, never an empty string or ``<no value>`` in a password (consul-template #972).
A missing hiera key is recorded and rendering goes on with a placeholder, so one run names every
missing key of every file of the service; the service still fails and nothing of it is written.
A key missing inside a shared ``_lib`` macro is reported at the service template's line that
called it, ``(via _lib/<macro file>:<line>)``.
Templates see the service's data through ``lookup(key, default=..., merge=...)``, and ``scope``,
``facts``, ``trusted``, ``service`` and ``machine`` (the file's machine), and for a file repeated
with ``each``, ``item`` and ``value``. A value hieradata marks Sensitive is unwrapped
for the template and remembered, so every later output can mask it.

Rendering is bounded (renderer.bounds): ``range()`` gives at most MAX_RANGE items, a file's
output stops at MAX_OUTPUT characters and its rendering at TEMPLATE_SECONDS, so a runaway
``{% for %}`` fails its service in one line instead of hanging the run. Template files must be
regular files (a FIFO is refused, not waited on).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from renderer import bounds, manifest
from renderer.errors import LookupNotFound, RenderError, TemplateError, each_error, raise_all
from renderer.hiera import NOT_GIVEN, Sensitive
from renderer.jinjaimport import jinja2
from renderer.masking import secret_strings
from renderer.scope import Scope
from renderer.services import FileSpec, Service, Templates, search_path, shared_dirs
from renderer.system.statedir import Directory


class Rendered(NamedTuple):
    spec: FileSpec
    data: bytes


def _unwrap(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, Sensitive):
        secrets.update(secret_strings(value.value))
        return _unwrap(value.value, secrets)
    if isinstance(value, dict):
        return {k: _unwrap(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, secrets) for v in value]
    return value


Frame = tuple[str, int]
Roots = tuple[Path, ...]  # the template search path


def _template_frames(tb: types.TracebackType | None, roots: Roots) -> list[Frame]:
    """The traceback frames that are template code (Jinja rewrites frames to it), outermost
    first."""
    found = []
    prefix = tuple(str(root) for root in roots)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(prefix) and not filename.endswith(".py"):
            found.append((filename, tb.tb_lineno))
        tb = tb.tb_next
    return found


def _template_line(tb: types.TracebackType | None, roots: Roots
                   ) -> tuple[str | None, int | None]:
    """The innermost traceback frame that is template code."""
    frames = _template_frames(tb, roots)
    return frames[-1] if frames else (None, None)


def _live_frames(roots: Roots) -> list[Frame]:
    """The template frames of the running call stack, outermost first: where a lookup was
    called from, read while it runs (no exception, so no rewritten traceback)."""
    found = []
    prefix = tuple(str(root) for root in roots)
    frame = sys._getframe(1)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        filename = getattr(template, "filename", None)
        if template is not None and filename and filename.startswith(prefix):
            found.append((filename, template.get_corresponding_lineno(frame.f_lineno)))
        frame = frame.f_back  # type: ignore[assignment]
    found.reverse()
    return found


def _located(error: RenderError, frames: list[Frame], roots: Roots) -> RenderError:
    """``error`` at the outermost template line (the service's own template); when the
    innermost is another one (a ``_lib`` macro, an include), that one is named as ``via``."""
    if not frames:
        return error
    error = error.with_context(path=frames[0][0], line=frames[0][1])
    if frames[-1] != frames[0] and error.path == frames[0][0]:
        inner, line = frames[-1]
        root = next((r for r in roots if inner.startswith(f"{r}{os.sep}")), roots[0])
        error.via = f"{os.path.relpath(inner, root)}:{line}"
    return error


class _MissingUsed(jinja2.UndefinedError):
    """A template did more with a missing key's placeholder than print or test it."""


class _Missing(jinja2.ChainableUndefined):
    """What a lookup of a missing key returns once the key is recorded: it prints as '',
    chains, iterates as empty and can be called, so the rest of the file still renders and
    names its own missing keys. Anything else with it raises _MissingUsed, which ends only
    that file (its recorded keys are the errors, not the placeholder's)."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> _Missing:  # type: ignore[override]
        return self


_UNRESOLVED = "\0not found:"


class _Loader(jinja2.FileSystemLoader):
    """FileSystemLoader that reads only regular files, opened with O_NONBLOCK (a FIFO named like
    a template is refused in one line; Jinja's own loader would block on it or skip it).

    One loader (and one environment) serves every service of a run, so the shared ``_lib``
    templates are compiled once, not once per service. Its search path is the current service's
    (its own folder, then every ``_lib``); ``resolve`` turns a name into the file it finds there,
    and that file's path is the name Jinja caches the template under: the same ``_lib`` file
    reached from any service is one compiled template, and a service's own ``x.j2`` never
    stands in for another's."""

    def __init__(self, searchpath: list[Path]) -> None:
        super().__init__(searchpath)
        self._found: set[str] = set()  # names resolve() returned: files found in a search path

    def resolve(self, template: str) -> str:
        """The file ``template`` names in the current search path; when there is none, a name
        no file has (so no other service's template is found under it) that get_source turns
        into the error saying where it looked."""
        pieces = jinja2.loaders.split_template_path(template)
        for searchpath in self.searchpath:
            filename = os.path.normpath(posixpath.join(searchpath, *pieces))
            manifest.note(filename)  # an earlier directory's file appearing shadows this one
            if os.path.lexists(filename) and not os.path.isdir(filename):
                self._found.add(filename)
                return filename
        return _UNRESOLVED + template

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        filename = template if template in self._found else self.resolve(template)
        if filename.startswith(_UNRESOLVED):
            template = filename.removeprefix(_UNRESOLVED)
            plural = "path" if len(self.searchpath) == 1 else "paths"
            raise jinja2.TemplateNotFound(template, f"{template!r} not found in search {plural}: "
                                          f"{', '.join(repr(p) for p in self.searchpath)}")
        raw = bounds.read_regular(filename, TemplateError)
        try:
            contents = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise TemplateError(f"invalid UTF-8 byte 0x{raw[exc.start]:02x}", path=filename,
                                line=line) from exc
        mtime = os.path.getmtime(filename)

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        return contents, os.path.normpath(filename), uptodate


def _range(*args: int) -> range:
    """``range`` with at most MAX_RANGE items (as Jinja's sandbox bounds it)."""
    items = range(*args)
    if items.stop - items.start > bounds.MAX_RANGE * abs(items.step) or \
            len(items) > bounds.MAX_RANGE:
        raise TemplateError(f"range() of more than {bounds.MAX_RANGE} items")
    return items


class _Timeout(BaseException):
    """Raised by SIGALRM inside a template; a BaseException so no ``except Exception`` on the
    way (Jinja's, hiera's) turns it into something else."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` of wall time (only the main thread can take signals). A timer
    the embedding program had armed is put back with the time it has left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Timeout

    import time

    previous = signal.signal(signal.SIGALRM, expire)
    start = time.monotonic()
    armed, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if armed:
            signal.setitimer(signal.ITIMER_REAL,
                             max(armed - (time.monotonic() - start), 1e-3))


def _bounded(parts: Iterator[str], limit: int, source: Path) -> str:
    """The output of ``Template.generate``, stopped once it is over ``limit`` characters."""
    chunks, size = [], 0
    for part in parts:
        size += len(part)
        if size > limit:
            raise TemplateError(f"output over the {bounds.size_text(limit)} limit "
                                "(a runaway loop?)", path=source)
        chunks.append(part)
    return "".join(chunks)


def bytecode_cache(directory: Directory | None, writable: bool,
                   host_key: bytes) -> jinja2.BytecodeCache | None:
    """Compiled templates in render's state dir: compiling is most of a run's own work.

    ``directory`` is System.cache_dir's checked fd; only files authenticated under ``host_key``
    are loaded (renderer.bccache); a dry run only reads it."""
    if directory is None:
        return None
    from renderer.bccache import SignedBytecodeCache, cache_key

    return SignedBytecodeCache(directory, cache_key(host_key), writable)


EXTENSIONS = ("jinja2.ext.do", "jinja2.ext.loopcontrols")


class _Environment(jinja2.Environment):
    """Names inside templates (``{% import %}``, ``{% include %}``) resolve in the current
    service's search path, to the file found there.

    Its extensions (EXTENSIONS) only parse: they are loaded the first time the environment
    lexes or parses a template (every such path asks ``iter_extensions``), so a run whose
    templates all come compiled from the cache never imports ``jinja2.ext`` (pprint,
    dataclasses)."""

    loader: _Loader
    _parsing = False

    def iter_extensions(self) -> Iterator[Any]:
        if not self._parsing:
            self._parsing = True
            for name in EXTENSIONS:
                self.add_extension(name)
        return super().iter_extensions()

    def join_path(self, template: str, parent: str) -> str:
        return self.loader.resolve(template)


class Renderer:
    """One Jinja2 environment for the whole run; its search path follows the service."""

    def __init__(self, templates: Templates, cache: jinja2.BytecodeCache | None = None) -> None:
        self.templates = search_path(templates)
        self._shared = list(shared_dirs(self.templates))
        self._env = _Environment(
            loader=_Loader(self._shared),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
            bytecode_cache=cache,
            cache_size=-1,      # every template of the run stays compiled
            auto_reload=False,  # one run: a template is read once (no stat on every use)
        )
        self._env.globals["range"] = _range

    def _env_for(self, service: Service) -> _Environment:
        self._env.loader.searchpath = [str(service.directory), *map(str, self._shared)]
        return self._env

    def render_service(self, service: Service, lookup: Callable[..., Any], scope: Scope,
                       secrets: set[str]) -> list[Rendered]:
        """Render every file of ``service``, or raise every error of every file (ServiceErrors
        when there are several).

        ``lookup(key, merge=None, default=NOT_GIVEN)`` resolves hieradata in the service's scope;
        values it returns as Sensitive are unwrapped and added to ``secrets``.
        """
        env = self._env_for(service)
        missing: list[RenderError] = []  # the current file's missing keys, in order

        def template_lookup(key: str, default: Any = NOT_GIVEN, merge: Any = None) -> Any:
            try:
                return _unwrap(lookup(key, merge=merge, default=default), secrets)
            except LookupNotFound as exc:
                error = _located(TemplateError(
                    f"hiera key '{exc.key}' not found and no default given",
                    service=service.name), _live_frames(self.templates), self.templates)
                if all(str(e) != str(error) for e in missing):  # once per line, not per loop
                    missing.append(error)
                return _Missing(hint=f"hiera key {exc.key!r} not found", exc=_MissingUsed)

        context = {
            "lookup": template_lookup,
            "scope": {**scope.facts, **scope.variables},
            "facts": scope.facts,
            "trusted": scope.trusted,
            "service": service.name,
            "machine": service.machine,
        }
        rendered, errors = [], []
        for spec in service.files:
            if spec.edit:  # a link, line or password has no template (renderer.edits)
                continue
            file_context = context
            if spec.machine is not None or spec.item is not None:
                # a file of another machine, or one copy of an ``each`` entry
                file_context = {**context, "machine": spec.machine or service.machine,
                                "item": spec.item, "value": spec.value}
            missing.clear()
            try:
                data = self._render_one(env, service, spec, file_context)
            except _MissingUsed as exc:  # a consequence of the keys recorded: they are the errors
                errors.extend(missing or [TemplateError(
                    f"undefined variable: {exc.message}", path=service.directory / spec.template,
                    service=service.name)])
                continue
            except RenderError as exc:
                errors.extend(missing)
                if missing and isinstance(exc.__cause__, jinja2.UndefinedError) and \
                        " is undefined" not in exc.message:
                    continue  # an attribute of what a placeholder made: the keys are the errors
                errors.extend(e for e in each_error(exc) if str(e) not in map(str, missing))
                continue
            errors.extend(missing)
            rendered.append(Rendered(spec, data))
        raise_all(errors)
        return rendered

    def _render_one(self, env: _Environment, service: Service, spec: FileSpec,
                    context: dict[str, Any]) -> bytes:
        source = service.directory / spec.template

        def error(message: str, exc: BaseException) -> RenderError:
            frames = _template_frames(exc.__traceback__, self.templates)
            return _located(TemplateError(message, service=service.name), frames,
                            self.templates).with_context(path=source)

        try:
            with _deadline(bounds.TEMPLATE_SECONDS):
                template = env.get_template(env.loader.resolve(spec.template))
                text = _bounded(template.generate(context), bounds.MAX_OUTPUT, source)
        except _Timeout as exc:  # not rewritten by Jinja: map the line of its code back
            path, line = _template_line(exc.__traceback__, self.templates)
            template = env.get_template(env.loader.resolve(spec.template))
            line = template.get_corresponding_lineno(line) \
                if line is not None and path == template.filename else None
            raise TemplateError(f"rendering took over {bounds.TEMPLATE_SECONDS:g} s (a runaway "
                                "loop?)", path=path or source, line=line,
                                service=service.name) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}",
                                path=exc.filename or source, line=exc.lineno,
                                service=service.name) from exc
        except _MissingUsed:
            raise
        except LookupNotFound as exc:
            raise error(f"hiera key '{exc.key}' not found and no default given", exc) from exc
        except RenderError as exc:  # e.g. an interpolation loop: say which template asked
            frames = _template_frames(exc.__traceback__, self.templates)
            raise _located(exc.with_context(service=service.name), frames,
                           self.templates) from exc
        except jinja2.UndefinedError as exc:
            raise error(f"undefined variable: {exc.message}", exc) from exc
        except Exception as exc:  # noqa: BLE001 - any error inside a template is the template's
            raise error(f"{type(exc).__name__}: {exc}", exc) from exc
        return text.encode("utf-8")
