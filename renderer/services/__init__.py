"""Service definitions: ``service_templates/<service>/service.yaml`` read, checked and bound.

A definition says which machine (container) the service lives in, which files it renders, where
each lands (inside the container's rootfs or on the host), who owns it, and what to restart when it
changes. Three steps, three modules, so that reading a definition (pure, checked with file and
line) and binding it (the only step that asks for data) can be told apart and called separately:

- ``load``: ``load_service`` reads ``service.yaml``, and the ``_lib/<name>.yaml`` files it
  includes with ``- include: <name>`` (the container block), into an unbound ``ServiceDef``;
  ``fields`` parses each key of an entry.
- ``bind``: ``resolve_machine`` and ``bind`` resolve what the data decides (machines, ``each``
  copies) with a ``lookup(key, default)`` into a ``Service`` whose files are final (the
  runner gives it lookups in the service's scope: ``renderer.runner.bind_in_scope``).
- ``model``: the frozen values.
"""

from renderer.services.bind import Lookup, bind, resolve_machine
from renderer.services.load import (
    VALIDATORS,
    Templates,
    list_services,
    load_service,
    search_path,
    service_dir,
    shared_dirs,
)
from renderer.services.model import (
    DAEMON_RELOAD_UNIT,
    DEFINITION,
    SHARED_DIR,
    Action,
    ActionKind,
    Entry,
    FileSpec,
    Kind,
    Ref,
    Restart,
    Root,
    Service,
    ServiceDef,
)

__all__ = [
    "DAEMON_RELOAD_UNIT", "DEFINITION", "SHARED_DIR", "VALIDATORS", "Action", "ActionKind",
    "Entry", "FileSpec", "Kind", "Lookup", "Ref", "Restart", "Root", "Service", "ServiceDef",
    "bind", "Templates", "list_services", "load_service", "resolve_machine", "search_path",
    "service_dir", "shared_dirs",
]
