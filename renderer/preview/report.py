"""The preview's report: nodes with identical changes grouped, cluster warnings, a summary, as
text, JSON or Markdown (a pull-request comment). Everything here is already masked (the workers
mask); this module only groups, counts and formats.

Exit codes as a run's (Puppet's --detailed-exitcodes): 0 no node changes, 2 changes, 4 errors,
6 both.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from renderer.preview.revision import Revision

ERRORED, CHANGED, UNAFFECTED = "errored", "changed", "unaffected"


def status(entry: dict[str, Any]) -> str:
    if entry["errors"] or any(s["change"] == "error" for s in entry["services"]):
        return ERRORED
    return CHANGED if entry["services"] else UNAFFECTED


def _key(entry: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in entry.items() if k not in ("node", "clusters")},
                      sort_keys=True)


def groups(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes whose entries are equal, in the order their first node was given; errored groups
    first, then changed, then the unaffected."""
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        group = found.get(key := _key(entry))
        if group is None:
            group = found[key] = {"nodes": [], "status": status(entry),
                                  **{k: v for k, v in entry.items()
                                     if k not in ("node", "clusters")}}
        group["nodes"].append(entry["node"])
    rank = {ERRORED: 0, CHANGED: 1, UNAFFECTED: 2}
    return sorted(found.values(), key=lambda g: rank[g["status"]])


def cluster_groups(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The cluster groups of the rolling restart policies, as each node's new revision binds
    them: name -> {service, units, members}; the members are the previewed nodes in it."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        for name, spec in entry["clusters"].items():  # renderer.preview.desired
            group = merged.setdefault(name, {"service": spec["service"], "units": [],
                                             "members": []})
            group["units"] += [u for u in spec["units"] if u not in group["units"]]
            group["members"].append(entry["node"])
    return merged


def cluster_warnings(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A group whose every member (two at least) would restart a unit its rolling policy
    covers: merged as it is, the whole cluster restarts within one Puppet run interval, paced
    only by the policy (the lock, or the probe alone without a coordinator)."""
    by_node = {entry["node"]: entry for entry in entries}
    warnings = []
    for name, group in sorted(cluster_groups(entries).items()):
        members = group["members"]
        if len(members) >= 2 and all(_restarts(by_node[m], group["units"]) for m in members):
            units = sorted({u for m in members for u in _restarts(by_node[m], group["units"])})
            warnings.append({"group": name, "service": group["service"], "units": units,
                             "members": members})
    return warnings


def _restarts(entry: dict[str, Any], units: list[str]) -> list[str]:
    return [r["unit"] for s in entry["services"] for r in s["restarts"] if r["unit"] in units]


def summary(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts = {ERRORED: 0, CHANGED: 0, UNAFFECTED: 0}
    for entry in entries:
        counts[status(entry)] += 1
    return counts


def exit_code(entries: list[dict[str, Any]]) -> int:
    changes = any(s["change"] != "error" for e in entries for s in e["services"])
    return (2 if changes else 0) | (4 if summary(entries)[ERRORED] else 0)


def document(entries: list[dict[str, Any]], revisions: tuple[Revision, Revision]
             ) -> dict[str, Any]:
    return {"from": _revision(revisions[0]), "to": _revision(revisions[1]),
            "summary": summary(entries), "warnings": cluster_warnings(entries),
            "groups": groups(entries)}


def _revision(revision: Revision) -> dict[str, Any]:
    return {"ref": revision.label, "commit": revision.commit}


SHOWN_NODES = 10  # names in a text or Markdown group header; JSON lists every one


def _nodes(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NODES])
    more = f" and {len(names) - SHOWN_NODES} more" if len(names) > SHOWN_NODES else ""
    return f"{len(names)} node{'s' if len(names) != 1 else ''}: {shown}{more}"


def _warning_line(w: dict[str, Any]) -> str:
    return (f"cluster {w['group']}: {w['service']} ({', '.join(w['units'])}) would restart on "
            f"every member ({', '.join(w['members'])}), paced by its rolling policy")


def _summary_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    return (f"{s[ERRORED]} node(s) errored, {s[CHANGED]} changed, {s[UNAFFECTED]} unaffected "
            f"({doc['from']['ref']} -> {doc['to']['ref']})")


def _service_lines(service: dict[str, Any], diff: bool) -> list[str]:
    lines = [f"  {service['service']}: {service['change']}"]
    lines += [f"    error: {line}" for line in service.get("errors", ())]
    lines += [f"    note: {note}" for note in service.get("notes", ())]
    for item in service["files"]:
        why = f" ({'; '.join(item['reasons'])})" if item["reasons"] else ""
        lines.append(f"    {item['change']} {item['path']}{why}")
        lines += [f"      note: {note}" for note in item["notes"]]
        if diff and item["diff"]:
            lines += ["      " + line for line in item["diff"].splitlines()]
    for restart in service["restarts"]:
        absorbed = f", with container {restart['with_container']}" \
            if "with_container" in restart else ""
        lines.append(f"    restart {restart['unit']} ({restart['reason']}{absorbed})")
    return lines


def text(doc: dict[str, Any], out: TextIO, diff: bool = True) -> None:
    for group in doc["groups"]:
        if group["status"] == UNAFFECTED:
            continue
        lines = [f"{_nodes(group['nodes'])} ({group['status']})"]
        lines += [f"  error: {line}" for line in group["errors"]]
        lines += [f"  error before ({doc['from']['ref']}): {line}"
                  for line in group["errors_before"]]
        for service in group["services"]:
            lines += _service_lines(service, diff)
        out.write("\n".join(lines) + "\n\n")
    for warning in doc["warnings"]:
        out.write(f"WARNING: {_warning_line(warning)}\n")
    unaffected = [n for g in doc["groups"] if g["status"] == UNAFFECTED for n in g["nodes"]]
    if unaffected:
        out.write(f"unaffected: {_nodes(unaffected)}\n")
    out.write(f"render preview: {_summary_line(doc)}\n")


def as_json(doc: dict[str, Any], out: TextIO) -> None:
    json.dump(doc, out, indent=1, sort_keys=True)
    out.write("\n")


def markdown(doc: dict[str, Any], out: TextIO) -> None:
    """A pull-request comment: a summary first, then one section per group, each diff in a
    collapsed ``diff`` block."""
    lines = [f"### render preview: {doc['from']['ref']} → {doc['to']['ref']}", "",
             f"**{_summary_line(doc)}**", ""]
    lines += [f"> :warning: **{_warning_line(w)}**" for w in doc["warnings"]]
    for group in doc["groups"]:
        if group["status"] == UNAFFECTED:
            lines += ["", f"Unaffected: {_nodes(group['nodes'])}"]
            continue
        lines += ["", f"#### {_nodes(group['nodes'])} ({group['status']})", ""]
        lines += [f"- error: `{_code(line)}`" for line in group["errors"]]
        lines += [f"- error before: `{_code(line)}`" for line in group["errors_before"]]
        for service in group["services"]:
            lines += _service_markdown(service)
    out.write("\n".join(lines) + "\n")


def _code(text: str) -> str:
    return text.replace("`", "'")


def _service_markdown(service: dict[str, Any]) -> list[str]:
    lines = [f"- **{service['service']}**: {service['change']}"]
    lines += [f"  - error: `{_code(line)}`" for line in service.get("errors", ())]
    lines += [f"  - note: {note}" for note in service.get("notes", ())]
    for item in service["files"]:
        why = f" ({'; '.join(item['reasons'])})" if item["reasons"] else ""
        lines.append(f"  - {item['change']} `{_code(item['path'])}`{why}")
        lines += [f"    - {note}" for note in item["notes"]]
        if item["diff"]:
            fence = "````" if "```" in item["diff"] else "```"
            lines += ["", "    <details><summary>diff</summary>", "",
                      f"    {fence}diff", *("    " + line for line in item["diff"].splitlines()),
                      f"    {fence}", "", "    </details>", ""]
    for restart in service["restarts"]:
        absorbed = f", with container `{restart['with_container']}`" \
            if "with_container" in restart else ""
        lines.append(f"  - restart `{_code(restart['unit'])}` ({restart['reason']}{absorbed})")
    return lines
