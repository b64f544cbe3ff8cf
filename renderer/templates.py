"""Templates: render a service's files in memory with Jinja2.

Undefined is strict: a missing variable or hiera key is an error naming the key and the template's
file and line, never an empty string or ``<no value>`` in a password (consul-template #972).
Templates see the service's data through ``lookup(key, default=..., merge=...)``, and ``scope``,
``facts``, ``trusted``, ``service`` and ``machine`` (the file's machine), and for a file repeated
with ``each``, ``item`` and ``value``. A value hieradata marks Sensitive is unwrapped
for the template and remembered, so every later output can mask it.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jinja2

from renderer.errors import LookupNotFound, RenderError, TemplateError
from renderer.hiera import NOT_GIVEN, Sensitive
from renderer.scope import Scope
from renderer.services import SHARED_DIR, FileSpec, Service
from renderer.system.statedir import Directory


class Rendered(NamedTuple):
    spec: FileSpec
    data: bytes


def _secret_strings(value: Any) -> list[str]:
    """Every scalar inside a Sensitive value, as it would appear in a rendered file."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_secret_strings(k), *_secret_strings(v))]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _secret_strings(item)]
    if value is None or isinstance(value, bool):
        return []
    return [str(value)]


def _unwrap(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, Sensitive):
        secrets.update(_secret_strings(value.value))
        return _unwrap(value.value, secrets)
    if isinstance(value, dict):
        return {k: _unwrap(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, secrets) for v in value]
    return value


def _template_line(tb: types.TracebackType | None, root: Path) -> tuple[str | None, int | None]:
    """The innermost traceback frame that is template code (Jinja rewrites frames to it)."""
    found: tuple[str | None, int | None] = (None, None)
    prefix = str(root)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(prefix) and not filename.endswith(".py"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def bytecode_cache(directory: Directory | None, writable: bool,
                   host_key: bytes) -> jinja2.BytecodeCache | None:
    """Compiled templates in render's state dir: compiling is most of a run's own work.

    ``directory`` is System.cache_dir's checked fd; only files authenticated under ``host_key``
    are loaded (renderer.bccache); a dry run only reads it."""
    if directory is None:
        return None
    from renderer.bccache import SignedBytecodeCache, cache_key

    return SignedBytecodeCache(directory, cache_key(host_key), writable)


class Renderer:
    """One Jinja2 environment per service folder, reused for every file of the run."""

    def __init__(self, templates: Path, cache: jinja2.BytecodeCache | None = None) -> None:
        self.templates = templates
        self._cache = cache
        self._envs: dict[Path, jinja2.Environment] = {}

    def _env(self, service: Service) -> jinja2.Environment:
        env = self._envs.get(service.directory)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([service.directory, self.templates / SHARED_DIR]),
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
                autoescape=False,
                extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
                bytecode_cache=self._cache,
            )
            self._envs[service.directory] = env
        return env

    def render_service(self, service: Service, lookup: Callable[..., Any], scope: Scope,
                       secrets: set[str]) -> list[Rendered]:
        """Render every file of ``service``, or raise for the first file that fails.

        ``lookup(key, merge=None, default=NOT_GIVEN)`` resolves hieradata in the service's scope;
        values it returns as Sensitive are unwrapped and added to ``secrets``.
        """
        env = self._env(service)

        def template_lookup(key: str, default: Any = NOT_GIVEN, merge: Any = None) -> Any:
            return _unwrap(lookup(key, merge=merge, default=default), secrets)

        context = {
            "lookup": template_lookup,
            "scope": {**scope.facts, **scope.variables},
            "facts": scope.facts,
            "trusted": scope.trusted,
            "service": service.name,
            "machine": service.machine,
        }
        rendered = []
        for spec in service.files:
            file_context = context
            if spec.machine is not None or spec.item is not None:
                # a file of another machine, or one copy of an ``each`` entry
                file_context = {**context, "machine": spec.machine or service.machine,
                                "item": spec.item, "value": spec.value}
            rendered.append(Rendered(spec, self._render_one(env, service, spec, file_context)))
        return rendered

    def _render_one(self, env: jinja2.Environment, service: Service, spec: FileSpec,
                    context: dict[str, Any]) -> bytes:
        source = service.directory / spec.template

        def error(message: str, exc: BaseException) -> TemplateError:
            path, line = _template_line(exc.__traceback__, self.templates)
            return TemplateError(message, path=path or source, line=line, service=service.name)

        try:
            text = env.get_template(spec.template).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message}",
                                path=exc.filename or source, line=exc.lineno,
                                service=service.name) from exc
        except LookupNotFound as exc:
            raise error(f"hiera key '{exc.key}' not found and no default given", exc) from exc
        except RenderError as exc:  # e.g. an interpolation loop: say which template asked
            path, line = _template_line(exc.__traceback__, self.templates)
            raise exc.with_context(service=service.name, path=path, line=line) from exc
        except jinja2.UndefinedError as exc:
            raise error(f"undefined variable: {exc.message}", exc) from exc
        except Exception as exc:  # noqa: BLE001 - any error inside a template is the template's
            raise error(f"{type(exc).__name__}: {exc}", exc) from exc
        return text.encode("utf-8")
