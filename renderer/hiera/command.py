"""``--backend 'LEVEL=command:PROG [ARGS]'``: a level whose backend render cannot run (a Vault
``lookup_key`` function, a site's own Ruby ``data_hash``) read from a command instead. A
deviation from Puppet, which runs the level's Ruby function; the protocol follows Hiera 5's
backend interface:

- a ``data_hash`` level: ``PROG ARGS`` once per location (each existing path, each uri, or once
  when the level has none) prints the level's whole hash as a JSON object; its values are
  interpolated, as Puppet interpolates a data_hash function's values;
- a ``lookup_key`` level: ``PROG ARGS KEY`` per root key prints the key's value as JSON (exit
  0), or exits 3 for "not found" (Puppet's ``context.not_found``); the value is not interpolated,
  as Puppet does not interpolate what a lookup_key function returns.

Every call gets the environment of render plus ``RENDER_HIERA_LEVEL`` (the level's name),
``RENDER_HIERA_FUNCTION`` (the function hiera.yaml names), ``RENDER_HIERA_OPTIONS`` (the level's
options as JSON, interpolated, with ``path`` or ``uri`` added for a location as Puppet adds them)
and ``RENDER_HIERA_SCOPE``: a file (0600, removed after the call) holding
``{"facts": ..., "trusted": ...}`` as JSON. No shell, stdin empty, at most ``COMMAND_SECONDS``
and ``MAX_FILE`` bytes of output; any other exit, bad JSON or a timeout is one line naming the
level and the key, with the first line of stderr, never a value. Every value a command gives is
a secret (Vault's are): masked in diffs, JSON, errors and ``--explain``, Sensitive in a bundle.
Answers are kept for the run per (level, location, key, options). A run that ran a command
records no fast-path manifest: what a command says has no ``lstat``.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from renderer.errors import HieraDataError
from renderer.hiera.keys import MISSING

PREFIX = "command:"
NOT_FOUND = 3
COMMAND_SECONDS = 30.0
KINDS = ("data_hash", "lookup_key")


class Backend(NamedTuple):
    """What a command level runs: the argv, the function kind and name, the options."""

    argv: tuple[str, ...]
    kind: str  # data_hash or lookup_key
    function: str
    options: dict[str, Any]
    location_key: str  # "path", "uri", or "" for a level without locations


def parse(how: str) -> tuple[str, ...] | None:
    """The argv of a ``command:PROG [ARGS]`` choice; None for another choice. Raises
    ValueError for bad quoting or an empty command."""
    if not how.startswith(PREFIX):
        return None
    import shlex

    argv = tuple(shlex.split(how[len(PREFIX):]))
    if not argv:
        raise ValueError("the command is empty")
    return argv


class CommandError(Exception):
    """Why a command gave no answer (the caller names the level and the key)."""


def run(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, str]:
    """Exit status, stdout (at most MAX_FILE bytes) and the first line of stderr."""
    import selectors
    import signal
    import subprocess
    import time

    from renderer.bounds import MAX_FILE, size_text

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True,
                                close_fds=True)
    except OSError as exc:
        raise CommandError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None and proc.stderr is not None
    out: list[bytes] = []
    err: list[bytes] = []
    sizes = {"out": 0, "err": 0}
    timeout = COMMAND_SECONDS
    deadline = time.monotonic() + timeout
    problem = None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "out")
        selector.register(proc.stderr, selectors.EVENT_READ, "err")
        while selector.get_map() and problem is None:
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"gave no answer in {timeout:g} s"
                break
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                sizes[key.data] += len(chunk)
                if key.data == "out":
                    out.append(chunk)
                    if sizes["out"] > MAX_FILE:
                        problem = f"printed more than {size_text(MAX_FILE)}"
                elif sizes["err"] <= 1 << 16:
                    err.append(chunk)
    if problem is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the command and its children
        except OSError:
            pass
    try:
        status = proc.wait(max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        status = proc.wait()
        problem = problem or f"gave no answer in {timeout:g} s"
    proc.stdout.close()
    proc.stderr.close()
    if problem is not None:
        raise CommandError(problem)
    lines = b"".join(err).decode("utf-8", "replace").strip().splitlines()
    return status, b"".join(out), lines[0][:200] if lines else ""


def _environment(inv: Any, backend: Backend, level: str, options: dict[str, Any],
                 scope_file: str) -> dict[str, str]:
    import json

    return {**os.environ, "RENDER_HIERA_LEVEL": level,
            "RENDER_HIERA_FUNCTION": backend.function,
            "RENDER_HIERA_OPTIONS": json.dumps(options, sort_keys=True, default=str),
            "RENDER_HIERA_SCOPE": scope_file}


def _scope_text(inv: Any) -> str:
    import json

    scope = inv.scope
    return json.dumps({"facts": scope.facts, "trusted": scope.trusted}, sort_keys=True,
                      default=str)


def call(inv: Any, backend: Backend, level: str, options: dict[str, Any],
         key: str | None) -> Any:
    """One call: the parsed JSON, or MISSING (a lookup_key command's exit 3)."""
    import json
    import tempfile

    from renderer import manifest

    manifest.taint("command backend")  # its answer has no lstat: this run records no manifest
    what = f"hierarchy '{level}' (--backend {level}=command:{backend.argv[0]})"
    if key is not None:
        what += f": key '{key}'"
    fd, scope_file = tempfile.mkstemp(prefix="render-scope-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_scope_text(inv))
        argv = [*backend.argv, *(() if key is None else (key,))]
        status, out, first = run(argv, _environment(inv, backend, level, options, scope_file))
    except CommandError as exc:
        raise HieraDataError(f"{what}: the command {exc}") from None
    finally:
        try:
            os.unlink(scope_file)
        except OSError:
            pass
    if key is not None and status == NOT_FOUND:
        return MISSING
    if status != 0:
        why = "killed by a signal" if status < 0 else f"exit status {status}"
        raise HieraDataError(f"{what}: the command failed ({why})" +
                             (f": {first}" if first else ""))
    try:
        value = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        where = f" (line {exc.lineno} column {exc.colno})" if isinstance(
            exc, json.JSONDecodeError) else ""
        raise HieraDataError(f"{what}: the command printed no JSON value{where}") from None
    if key is None and type(value) is not dict:
        raise HieraDataError(f"{what}: a data_hash command must print a JSON object, not "
                             f"{type(value).__name__}")
    return value


def read(hiera: Any, inv: Any, location: Any, root: str) -> Any:
    """The value of ``root`` at one location of a command level (MISSING when it has none),
    learnt as a secret; a data_hash level's value interpolated."""
    from renderer.hiera.interpolate import interpolate
    from renderer.masking import secret_strings

    backend: Backend = location.backend
    options, text = _options(backend, location, inv)
    if backend.kind == "lookup_key":
        cache_key = (location.level, location.path, root, text)
        if cache_key not in hiera.command_values:
            hiera.command_values[cache_key] = call(inv, backend, location.level, options, root)
        value = hiera.command_values[cache_key]
    else:
        value = data_hash(hiera, inv, location, options, text).get(root, MISSING)
    if value is MISSING:
        return value
    hiera.secrets.update(secret_strings(value))
    return value if backend.kind == "lookup_key" else interpolate(value, inv, True)


def data_hash(hiera: Any, inv: Any, location: Any, options: dict[str, Any],
              text: str) -> dict[Any, Any]:
    cache_key = (location.level, location.path, None, text)
    found = hiera.command_values.get(cache_key)
    if found is None:
        found = hiera.command_values[cache_key] = call(inv, location.backend, location.level,
                                                       options, None)
    return found


def keys_with_prefix(hiera: Any, inv: Any, location: Any, prefix: str) -> list[str]:
    """A data_hash command's keys starting with ``prefix``; a lookup_key command lists none
    (Hiera never lists keys: INI overrides cannot come from one)."""
    backend: Backend = location.backend
    if backend.kind != "data_hash":
        return []
    options, text = _options(backend, location, inv)
    return [key for key in data_hash(hiera, inv, location, options, text)
            if type(key) is str and key.startswith(prefix)]


def _options(backend: Backend, location: Any, inv: Any) -> tuple[dict[str, Any], str]:
    """The level's options interpolated, with the location as Puppet adds it; and as JSON."""
    import json

    from renderer.hiera.interpolate import interpolate

    options = dict(interpolate(backend.options, inv, False))
    if backend.location_key:
        options[backend.location_key] = location.path
    return options, json.dumps(options, sort_keys=True, default=str)
