"""Two revisions' desired state of one node -> what merging would change there. Pure.

Per service and file: created (only the new revision renders it), dropped (only the old one:
render stops managing it and leaves it in place), updated (content) or fixed (owner, group or
mode), with a unified diff masked on both sides (renderer.masking: the options either revision
holds a secret in, every known secret value of both revisions, and eyaml placeholders). A unit
restarts when its config hash differs between the revisions, or is new; a container restart
absorbs the units inside it, as apply runs them (renderer.restarts.order).

Without the eyaml key a token's plaintext is unknowable: it renders as a placeholder named after
its ciphertext (renderer.hiera.eyaml.sealed_placeholder, masked), so a file whose placeholders
differ says "encrypted value changed" and nothing more.
"""

from __future__ import annotations

import re
from typing import Any

from renderer.hiera.eyaml import SEALED_PREFIX
from renderer.masking import Masker
from renderer.names import printable
from renderer.preview.desired import DesiredFile, DesiredNode, DesiredService
from renderer.restarts import order

_SEALED = re.compile(re.escape(SEALED_PREFIX) + "[0-9a-f]{16}")
ENCRYPTED_CHANGED = "encrypted value changed (no eyaml key: the plaintext is unknown)"


def compare_node(old: DesiredNode, new: DesiredNode, masker: Masker, context: int = 3
                 ) -> dict[str, Any]:
    """The node's entry (without its name): ``errors`` (each revision's, labelled by the
    caller), ``services`` that change, in name order. Equal entries mean equal changes."""
    services = []
    names = set(new.services) if new.errors else set(old.services) | set(new.services)
    for name in sorted(names):  # a node the new revision fails is only its errors
        entry = compare_service(old.services.get(name), new.services.get(name), masker,
                                context)
        if entry is not None:
            services.append({"service": name, **entry})
    return {"errors_before": list(old.errors), "errors": list(new.errors),
            "services": services}


def compare_service(old: DesiredService | None, new: DesiredService | None, masker: Masker,
                    context: int) -> dict[str, Any] | None:
    """None when nothing about the service changes."""
    if new is not None and new.errors:
        return {"change": "error", "errors": list(new.errors), "files": [], "restarts": []}
    change = "added" if old is None else "removed" if new is None else "changed"
    before = old.files if old is not None and not old.errors else {}
    after = new.files if new is not None else {}
    files = [{"target": key, **entry} for key in sorted(set(before) | set(after))
             if (entry := compare_file(before.get(key), after.get(key), masker, context))]
    restarts = _restarts(old, new)
    notes = [f"failed before: {line}" for line in old.errors] if old and old.errors else []
    if change == "changed" and not files and not restarts and not notes:
        return None
    return {"change": change, "notes": notes, "files": files, "restarts": restarts}


def compare_file(old: DesiredFile | None, new: DesiredFile | None, masker: Masker,
                 context: int) -> dict[str, Any] | None:
    if old is not None and new is not None and old.hash == new.hash:
        return None
    shown = new or old
    assert shown is not None
    path = printable(shown.path)
    if new is None:
        return {"path": path, "change": "dropped", "reasons": ["no longer rendered: render "
                "leaves the file as it is"], "notes": [], "diff": ""}
    reasons, notes = [], []
    if old is None:
        kind = "create"
    else:
        kind = "update" if old.data != new.data else "fix"
        if old.data != new.data:
            reasons.append("content")
        if old.meta != new.meta:
            reasons.append(f"{old.meta} -> {new.meta}")
    if _sealed(old) != _sealed(new):
        notes.append(ENCRYPTED_CHANGED)
    diff = _diff(old, new, masker, context, path) if kind != "fix" else ""
    return {"path": path, "change": kind, "reasons": reasons, "notes": notes, "diff": diff}


def _sealed(item: DesiredFile | None) -> frozenset[str]:
    if item is None:
        return frozenset()
    return frozenset(_SEALED.findall(item.data.decode("utf-8", "replace")))


def _diff(old: DesiredFile | None, new: DesiredFile, masker: Masker, context: int,
          path: str) -> str:
    import difflib

    names = _names(new, masker) | (_names(old, masker) if old is not None else frozenset())
    whole = new.whole or (old is not None and old.whole)

    def masked(item: DesiredFile) -> list[str]:
        return masker.mask_lines(item.data.decode("utf-8", "replace").splitlines(keepends=True),
                                 names=names, whole=whole)

    lines = difflib.unified_diff(masked(old) if old is not None else [], masked(new),
                                 "/dev/null" if old is None else path, path, n=context)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _names(item: DesiredFile, masker: Masker) -> frozenset[str]:
    if item.names is not None:
        return item.names
    return masker.secret_names(item.data.decode("utf-8", "replace"), item.secret_options)


def _restarts(old: DesiredService | None, new: DesiredService | None) -> list[dict[str, Any]]:
    """The units whose config hash differs (or that are new), in the order apply runs them."""
    if new is None:
        return []
    before = old.units if old is not None and not old.errors else {}
    due = {action: ("new" if key not in before else "config changed")
           for key, (action, hashed) in new.units.items()
           if key not in before or before[key][1] != hashed}
    ordered, absorbed = order(due)
    return [{"unit": printable(action.describe()), "kind": action.kind.value,
             "machine": action.machine, "name": printable(action.unit), "reason": due[action],
             **({"with_container": printable(absorbed[action].unit)}
                if action in absorbed else {})}
            for action in ordered]
