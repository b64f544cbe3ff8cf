"""Reading ``service_templates/<service>/service.yaml`` into a ``ServiceDef``.

Everything a definition can get wrong by itself is checked here, before any data is read or any
template rendered, so a typo is reported with its file and line and never reaches the disk. Each
value is parsed once: ``dest`` and ``restart`` are checked as patterns (``{machine}``, ``{item}``
left in) and kept in that parsed form for ``bind``.

Lines live beside the data, never inside it: the loader records the line of every mapping it
builds in a side map keyed by the mapping's ``id()``, valid while the document is alive. A
lookup's ``default: {}`` therefore stays the empty hash the author wrote.

``{include: NAME}`` in ``files`` splices in the ``files`` of ``service_templates/_lib/NAME.yaml``
at that place (the container block: ``.nspawn``, host0 and macvlan network files), optionally
with ``machine:`` for every included entry. Each included file is read once per definition, its
errors point into it, and it may not include another.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import renderer.services.fields as fields
import renderer.services.policy as policy
from renderer import manifest, yamlcache
from renderer.bounds import decode, read_regular
from renderer.errors import RenderError, ServiceError, raise_all
from renderer.names import SUBCOMMANDS, is_name
from renderer.services.fields import Where
from renderer.services.model import DEFINITION, SHARED_DIR, Entry, Kind, ServiceDef

_FILE_KEYS = {"template", "dest", "root", "owner", "group", "mode", "restart", "create_dirs",
              "secret", "secret_options", "validate", "oslo_namespaces", "follow_symlink",
              "machine", "each", "rollback_on_failure"}
_INCLUDE_KEYS = {"include", "machine"}
_SERVICE_KEYS = {"machine", "description", "files", "restart_policy"}
_SHARED_KEYS = {"description", "files"}  # an included file: no machine of its own
VALIDATORS = ("none", "ini", "systemd", "libvirt")


@functools.cache
def _line_loader() -> type:
    """A Loader that records the line of every mapping in ``lines`` (by id) instead of writing
    it into it; built on first use, so a run whose files are all cached never imports PyYAML."""
    from renderer.yamlload import Loader

    class LineLoader(Loader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.lines: dict[int, int] = {}

        def construct_line_map(self, node: Any) -> Iterator[dict[Any, Any]]:
            data: dict[Any, Any] = {}
            self.lines[id(data)] = node.start_mark.line + 1
            yield data  # like SafeConstructor.construct_yaml_map: recursive structures work
            data.update(self.construct_mapping(node))

    LineLoader.add_constructor("tag:yaml.org,2002:map", LineLoader.construct_line_map)
    return LineLoader


def _mappings(value: Any) -> Iterator[dict[Any, Any]]:
    """Every mapping in ``value``, depth first, one shared through an alias each time it is
    met: the order in which the cache stores their lines (renderer.yamlcache)."""
    if type(value) is dict:
        yield value
        for item in value.values():
            yield from _mappings(item)
    elif type(value) is list:
        for item in value:
            yield from _mappings(item)


class _Document(NamedTuple):
    """A parsed YAML file and the line of each of its mappings. It holds ``data``, so no mapping
    is freed and no id in ``lines`` can stand for another object."""

    where: Where
    data: Any
    lines: dict[int, int]

    def at(self, mapping: object) -> Where:
        return self.where.at(self.lines.get(id(mapping)))


Templates = Path | Sequence[Path]  # one directory, or a search path: earlier ones win


def search_path(templates: Templates) -> tuple[Path, ...]:
    """The template search path as a tuple, for callers that still pass one directory."""
    return (templates,) if isinstance(templates, Path) else tuple(templates)


def shared_dirs(templates: Templates) -> tuple[Path, ...]:
    """``_lib`` of every directory of the path, in order: a site's ``_lib/x.j2`` wins over the
    shipped one and the shipped others are still found."""
    return tuple(directory / SHARED_DIR for directory in search_path(templates))


def list_services(templates: Templates) -> list[str]:
    """Every folder with a service.yaml in any directory of the path, sorted; folders starting
    with ``_`` hold shared files."""
    names: set[str] = set()
    path = search_path(templates)
    for directory in path:
        manifest.note(directory)  # a service folder added or removed changes its mtime
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError as exc:
            if len(path) > 1 and any(d.is_dir() for d in path):
                continue  # e.g. no /etc/render/services yet: the package's config names it
            raise ServiceError(f"cannot list service templates: {exc.strerror}",
                               path=directory) from exc
        except OSError as exc:
            raise ServiceError(f"cannot list service templates: {exc.strerror}",
                               path=directory) from exc
        names.update(e.name for e in entries
                     if not e.name.startswith(("_", ".")) and _listed(e / DEFINITION))
    return sorted(names)


def _listed(definition: Path) -> bool:
    manifest.note(definition)
    return definition.is_file()


def service_dir(templates: Templates, name: str) -> Path | None:
    """The folder of ``name`` in the first directory of the path that has it: a site folder
    replaces the shipped one whole, never file by file."""
    for directory in search_path(templates):
        manifest.note(directory / name / DEFINITION)
        if _present(directory / name / DEFINITION):
            return directory / name
    return None


def load_service(templates: Templates, name: str,
                 shared: dict[str, tuple[Entry, ...]] | None = None) -> ServiceDef:
    """The definition of service ``name``; ``bind`` makes it a ``Service``. ``shared``: the
    included files already read in this run (one dict per run and search path), so a host of
    1,000 services reads and checks ``_lib/container.yaml`` once, not 1,000 times."""
    if not is_name(name):
        raise ServiceError(f"invalid service name {name!r}", service=name)
    if name in SUBCOMMANDS:
        raise ServiceError(f"service name {name!r} is reserved for the subcommand "
                           f"`render {name}`", service=name)
    directory = service_dir(templates, name)
    if directory is None:
        path = search_path(templates)
        known = list_services(path)
        import difflib  # only for a misspelt name's hint

        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ServiceError(f"unknown service {name!r}{hint} (known: {', '.join(known) or 'none'})",
                           path=path[0] if len(path) == 1 else None, service=name)
    return _Reader(directory, shared_dirs(templates), name, shared).service(
        _parse(Where(directory / DEFINITION, name)))


def _present(path: Path) -> bool:
    """There, and not a directory: whether it is a regular file is checked when it is read
    (a FIFO is refused in one line naming it, not reported as missing)."""
    return os.path.lexists(path) and not os.path.isdir(path)


def _parse(where: Where) -> _Document:
    try:
        raw = read_regular(where.path, ServiceError)  # a FIFO is refused, never waited on
    except ServiceError as exc:
        raise where.fail(exc.message) from exc
    data, lines = yamlcache.parsed("service.yaml", raw, lambda: _read(where, raw))
    if not isinstance(data, dict):
        raise where.at(1).fail("must be a mapping with 'files'")
    return _Document(where, data, {id(m): line for m, line in zip(_mappings(data), lines)})


def _read(where: Where, raw: bytes) -> list[Any]:
    """``[value, the line of each of its mappings in _mappings order]``."""
    from renderer.yamlload import parse_document

    loader = _line_loader()(decode(raw, where.path, ServiceError))
    data = parse_document(loader, where.path, ServiceError)
    return [data, [loader.lines.get(id(m)) for m in _mappings(data)]]


def _files(doc: _Document) -> list[Any]:
    files = doc.data.get("files")
    if not isinstance(files, list) or not files:
        raise doc.at(doc.data).fail("'files' must be a non-empty list")
    return files


class _Reader:
    """Reads one definition and the files it includes, each included file once."""

    def __init__(self, directory: Path, shared: tuple[Path, ...], name: str,
                 run: dict[str, tuple[Entry, ...]] | None = None) -> None:
        self.name = name
        self.directory = directory
        self.shared = shared
        self.included: dict[str, tuple[Entry, ...]] = {}
        self.run = run  # included files every service reads alike, across this run
    def service(self, doc: _Document) -> ServiceDef:
        fields.unknown(doc.data, _SERVICE_KEYS, doc.at(doc.data))
        machine = fields.machine(doc.data.get("machine", self.name), doc.at(doc.data))
        entries = self.entries(doc, _files(doc), nested=False)
        policies: policy.Policies = ()
        if "restart_policy" in doc.data:
            where = doc.at(doc.data["restart_policy"]) \
                if isinstance(doc.data["restart_policy"], dict) else doc.at(doc.data)
            policies = policy.load(doc.data["restart_policy"], where)
            used = {r for e in entries for r in e.restart}
            for restart, _ in policies:
                if restart not in used:
                    written = ":".join(filter(None, (restart.kind.value, restart.unit)))
                    raise where.fail(f"restart_policy: no file restarts {written}")
        return ServiceDef(self.name, self.directory, machine, entries, policies)

    def entries(self, doc: _Document, files: list[Any], nested: bool) -> tuple[Entry, ...]:
        """Every entry; a bad one is an error and the next ones are still read, so every bad
        entry is reported in one run."""
        result: list[Entry] = []
        errors: list[RenderError] = []
        for raw in files:
            try:
                if not isinstance(raw, dict):
                    raise doc.where.fail("each entry of 'files' must be a mapping")
                if "include" in raw:
                    result.extend(self.include(raw, doc.at(raw), nested))
                else:
                    result.append(self.entry(raw, doc.at(raw)))
            except RenderError as exc:  # an included file's errors come as ServiceErrors
                errors.append(exc)
        raise_all(errors)
        return tuple(result)

    def include(self, raw: dict[str, Any], where: Where, nested: bool) -> tuple[Entry, ...]:
        if nested:
            raise where.fail("an included file cannot include another")
        fields.unknown(raw, _INCLUDE_KEYS, where)
        entries = self.shared_entries(raw["include"], where)
        if "machine" not in raw:
            return entries
        machine = fields.machine(raw["machine"], where)
        if any(entry.machine is not None for entry in entries):
            raise where.fail(f"machine: {raw['include']!r} sets the machine of its own entries")
        return tuple(entry._replace(machine=machine) for entry in entries)

    def shared_entries(self, name: Any, where: Where) -> tuple[Entry, ...]:
        if not is_name(name):
            raise where.fail(f"include must name a file in {SHARED_DIR}/, not {name!r}")
        if name not in self.included and self.run is not None and name in self.run:
            self.included[name] = self.run[name]
        if name not in self.included:
            path = self._shared_file(f"{name}.yaml")
            if path is None:
                raise where.fail(f"include {name!r}: {self.shared[0] / f'{name}.yaml'} not found")
            doc = _parse(Where(path, self.name))
            fields.unknown(doc.data, _SHARED_KEYS, doc.at(doc.data))
            self.included[name] = self.entries(doc, _files(doc), nested=True)
            if self.run is not None and all(
                    e.kind is not Kind.FILE or self._shared_file(e.template) is not None
                    for e in self.included[name]):
                self.run[name] = self.included[name]  # found without this service's folder
        return self.included[name]

    def entry(self, raw: dict[str, Any], where: Where) -> Entry:
        edit = fields.edit(raw, where)
        if edit is not None:
            return self.edit(raw, where, *edit)
        fields.unknown(raw, _FILE_KEYS, where)
        template = self.template(raw.get("template"), where)
        root = fields.root(raw.get("root", "container"), where)
        validate = fields.choice(raw.get("validate", "none"), "validate", VALIDATORS, where)
        each = fields.ref(raw["each"], "each", where) if "each" in raw else None
        return Entry(
            template=template,
            dest=fields.dest(raw.get("dest"), each is not None, where),
            root=root,
            restart=fields.restarts(raw.get("restart", "none"), each is not None, where),
            machine=fields.machine(raw["machine"], where) if "machine" in raw else None,
            owner=fields.owner(raw.get("owner"), "owner", where),
            group=fields.owner(raw.get("group"), "group", where),
            mode=fields.mode(raw.get("mode"), where),
            create_dirs=fields.flag(raw.get("create_dirs", False), "create_dirs", where),
            secret=fields.flag(raw.get("secret", False), "secret", where),
            secret_options=fields.option_names(raw.get("secret_options", []), where),
            validate=validate,
            oslo_namespaces=fields.namespaces(raw.get("oslo_namespaces"), validate, where),
            follow_symlink=fields.flag(raw.get("follow_symlink", False), "follow_symlink",
                                       where),
            source=where.path,
            line=where.line,
            each=each,
            rollback_on_failure=fields.optional_flag(raw.get("rollback_on_failure"),
                                                     "rollback_on_failure", where),
        )

    def edit(self, raw: dict[str, Any], where: Where, kind: Kind, argument: str,
             account: str) -> Entry:
        """A link, line or password entry (renderer.edits): no template, owner or mode."""
        return Entry(
            template="", dest=fields.dest(raw.get("dest"), False, where),
            root=fields.root(raw.get("root", "container"), where),
            owner=None, group=None, mode=None,
            restart=fields.restarts(raw.get("restart", "none"), False, where),
            machine=fields.machine(raw["machine"], where) if "machine" in raw else None,
            create_dirs=fields.flag(raw.get("create_dirs", False), "create_dirs", where),
            secret=kind is Kind.PASSWORD, validate="none", oslo_namespaces=None,
            follow_symlink=fields.flag(raw.get("follow_symlink", False), "follow_symlink",
                                       where),
            source=where.path, line=where.line,
            rollback_on_failure=fields.optional_flag(raw.get("rollback_on_failure"),
                                                     "rollback_on_failure", where),
            kind=kind, argument=argument, account=account)

    def template(self, value: Any, where: Where) -> str:
        """A service's templates are found in its folder, then in _lib (included entries too)."""
        if not isinstance(value, str) or not (_present(self.directory / value)
                                              or self._shared_file(value) is not None):
            raise where.fail(f"template {value!r} not found in {self.directory} or {SHARED_DIR}/")
        return value

    def _shared_file(self, name: str) -> Path | None:
        """The first ``_lib`` of the search path that has ``name``."""
        return next((d / name for d in self.shared if _present(d / name)), None)
