"""Conformance: every case in tests/data/hiera/cases runs through real ``puppet lookup`` and
through ``Hiera.lookup``, and the two must agree exactly: the same JSON (types and hash key order
included), and the same found / not found / error outcome.

Puppet runs isolated (own confdir, vardir, codedir, empty basemodulepath, the case as its only
environment, no global hiera.yaml), one process per case; ``puppet_lookup_batch.rb`` runs Puppet's
own lookup application but answers all of a case's queries in one compiled scope. Processes run in
parallel. Puppet's answers are also kept as golden files (``<case>.expected.json``) for review;
``RENDER_UPDATE_GOLDEN=1`` rewrites them, otherwise a change in Puppet's answers fails the test.

Without ``puppet`` on PATH the tests fail: they are the proof that render resolves as Puppet does.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from renderer.errors import HieraError, LookupNotFound
from renderer.hiera import NOT_GIVEN, Hiera, Sensitive
from renderer.hiera import merge as merging
from renderer.scope import Scope

pytestmark = pytest.mark.puppet

DATA = Path(__file__).parent / "data" / "hiera"
CASES = DATA / "cases"
DRIVER = DATA / "puppet_lookup_batch.rb"
SAMPLE = Path(__file__).parent.parent / "hieradata"
NODE = "node1.example.com"
UPDATE = os.environ.get("RENDER_UPDATE_GOLDEN") == "1"


def _facts(case: dict) -> dict:
    """The node's names (all four, as puppet lookup demands), then the case's facts."""
    node = case.get("node", NODE)
    hostname, _, domain = node.partition(".")
    return {"hostname": hostname, "domain": domain, "fqdn": node, "clientcert": node,
            **(case.get("facts") or {})}


def _trusted(case: dict) -> dict:
    """``$trusted`` as ``puppet lookup --node`` builds it (key order included)."""
    node = case.get("node", NODE)
    hostname, _, domain = node.partition(".")
    return {"authenticated": "local", "certname": node, "extensions": {}, "hostname": hostname,
            "domain": domain, "external": {}}


def _case_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in CASES.glob("*.yaml"))


def _sample_cases() -> dict[str, dict]:
    """The repository's sample hieradata, once per service, querying every key it defines."""
    if not (SAMPLE / "hiera.yaml").exists():
        return {}
    files = {str(p.relative_to(SAMPLE)): p.read_text() for p in sorted(SAMPLE.rglob("*"))
             if p.is_file() and p.name != "hiera.yaml"}
    keys = sorted({key for name, text in files.items() if name.endswith(".yaml")
                   for key in (yaml.safe_load(text) or {}) if key != "lookup_options"})
    nodes = sorted(p.stem for p in (SAMPLE / "data" / "nodes").glob("*.yaml"))
    services = sorted(p.stem for p in (SAMPLE / "data" / "services").glob("*.yaml"))
    return {f"sample_{service}": {
        "hiera": (SAMPLE / "hiera.yaml").read_text(), "files": files,
        "node": nodes[0] if nodes else NODE, "facts": {"os": {"family": "Debian"}},
        "variables": {"service": service, "machine": service},
        "queries": [{"key": key, **merge} for key in keys for merge in ({}, {"merge": "deep"})],
    } for service in services}


PUPPET_MISSING = ("`puppet` is not on PATH: the Hiera conformance tests need real Puppet 7 "
                  "(Debian: apt-get install -y puppet, or `make test`)")


def _ruby() -> str | None:
    """The interpreter of the installed ``puppet`` (from its shebang); None without puppet."""
    puppet = shutil.which("puppet")
    if puppet is None:
        return None
    first = Path(puppet).read_text(errors="replace").splitlines()[0]
    parts = first.removeprefix("#!").split()
    return parts[-1] if parts and parts[0].endswith("env") else parts[0]


def _answers(puppet_results: dict | None, name: str) -> Any:
    """Puppet's answers for one case; the test fails (never skips) when Puppet could not run."""
    if puppet_results is None:
        pytest.fail(PUPPET_MISSING, pytrace=False)
    answers = puppet_results[name]
    if isinstance(answers, Exception):
        raise answers
    return answers


def _materialize(case: dict, root: Path) -> Path:
    """The case as a Puppet environment directory under ``root``; returns it."""
    env = root / "envs" / "production"
    env.mkdir(parents=True)
    for sub in ("conf", "var", "code", "noglobal"):
        (root / sub).mkdir()
    (env / "hiera.yaml").write_text(case.get("hiera", "version: 5\n"))
    for name, content in (case.get("files") or {}).items():
        path = env / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    if case.get("variables"):
        (env / "manifests").mkdir()
        (env / "manifests" / "site.pp").write_text("".join(
            f"${name} = {json.dumps(value)}\n" for name, value in case["variables"].items()))
    (root / "facts.json").write_text(json.dumps(_facts(case)))
    return env


def _puppet_args(root: Path, case: dict) -> list[str]:
    return ["--confdir", str(root / "conf"), "--vardir", str(root / "var"),
            "--codedir", str(root / "code"), "--basemodulepath", "",
            "--environmentpath", str(root / "envs"), "--environment", "production",
            "--hiera_config", str(root / "noglobal" / "hiera.yaml"),
            "--facts", str(root / "facts.json"), "--node", case.get("node", NODE),
            *(["--compile"] if case.get("variables") else [])]


def _run_puppet(name: str, case: dict, ruby: str, scratch: Path) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=scratch))
    env = _materialize(case, root)
    (root / "queries.json").write_text(json.dumps(case["queries"]))
    process = subprocess.run(
        [ruby, str(DRIVER), *_puppet_args(root, case)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "HIERA_QUERIES": str(root / "queries.json"),
                          "HIERA_RESULTS": str(root / "results.jsonl")})
    results_file = root / "results.jsonl"
    if process.returncode != 0 or not results_file.exists():
        raise AssertionError(f"puppet failed on case {name}:\n{process.stdout}\n{process.stderr}")
    results = []
    for query, line in zip(case["queries"], results_file.read_text().splitlines()):
        raw = json.loads(line)
        result = {"query": query, "status": raw["status"]}
        if raw["status"] == "found":
            result["value"] = json.loads(raw["json"])
        elif raw["status"] == "error":
            result["message"] = raw["message"].replace(str(env), "<env>")
        results.append(result)
    return results


@pytest.fixture(scope="module")
def puppet_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any] | None:
    """Every case through Puppet, in parallel; a failure is kept per case. None without Puppet."""
    ruby = _ruby()
    if ruby is None:
        return None
    scratch = tmp_path_factory.mktemp("puppet")
    cases = {name: yaml.safe_load((CASES / f"{name}.yaml").read_text())
             for name in _case_names()}
    cases.update(_sample_cases())
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(_run_puppet, name, case, ruby, scratch)
                   for name, case in cases.items()}
        futures["__cli__"] = pool.submit(_cli_lookups, ruby, scratch)
        futures["__merge_fuzz__"] = pool.submit(_ruby_merges, ruby, scratch)
    results: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # reported by the test of that case
            results[name] = exc
    return results


def _jsonable(value: Any) -> Any:
    """What ``puppet lookup --render-as json`` prints for a value render returned."""
    if isinstance(value, Sensitive):
        return "Sensitive [value redacted]"
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _run_render(case: dict, root: Path) -> list[dict]:
    env = _materialize(case, root)
    scope = Scope(facts=_facts(case), trusted=_trusted(case),
                  variables=dict(case.get("variables") or {}))
    try:
        hiera = Hiera.load(env / "hiera.yaml")
    except HieraError as exc:
        return [{"query": q, "status": "error", "message": str(exc)} for q in case["queries"]]
    results = []
    for query in case["queries"]:
        result: dict[str, Any] = {"query": query}
        try:
            value = hiera.lookup(query["key"], scope, merge=query.get("merge"),
                                 default=query["default"] if "default" in query else NOT_GIVEN)
            result.update(status="found", value=_jsonable(value))
        except LookupNotFound:
            result["status"] = "notfound"
        except HieraError as exc:
            result.update(status="error", message=str(exc))
        results.append(result)
    return results


def _outcome(result: dict) -> str:
    """Status and exact JSON text: json.dumps keeps key order and tells 1 from 1.0 from true."""
    if result["status"] != "found":
        return result["status"]
    return "found " + json.dumps(result["value"], ensure_ascii=False)


@pytest.mark.parametrize("name", _case_names())
def test_case_matches_puppet(name: str, puppet_results: dict, tmp_path: Path) -> None:
    puppet = _answers(puppet_results, name)
    case = yaml.safe_load((CASES / f"{name}.yaml").read_text())
    render = _run_render(case, tmp_path)
    mismatches = [
        f"  {json.dumps(p['query'])}:\n    puppet: {_outcome(p)} {p.get('message', '')}\n"
        f"    render: {_outcome(r)} {r.get('message', '')}"
        for p, r in zip(puppet, render) if _outcome(p) != _outcome(r)]
    assert not mismatches, f"case {name} differs from Puppet:\n" + "\n".join(mismatches)
    golden = CASES / f"{name}.expected.json"
    if UPDATE or not golden.exists():
        golden.write_text(json.dumps(puppet, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(golden.read_text())
    assert [_outcome(r) for r in expected] == [_outcome(r) for r in puppet], \
        f"Puppet's answers for {name} changed; review and rerun with RENDER_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", list(_sample_cases()))
def test_sample_hieradata_matches_puppet(name: str, puppet_results: dict, tmp_path: Path) -> None:
    """The repository's own hieradata, every key, as each service sees it."""
    puppet = _answers(puppet_results, name)
    render = _run_render(_sample_cases()[name], tmp_path)
    assert [_outcome(r) for r in render] == [_outcome(p) for p in puppet]


# --- the batch driver answers as the `puppet lookup` command does -------------------------------

CLI_CASE = "merge_deep"
CLI_QUERIES = [{"key": "users", "merge": "deep"}, {"key": "packages", "merge": "unique"},
               {"key": "missing"}]


def _cli_lookups(ruby: str, scratch: Path) -> list[dict]:
    """A few queries through the real ``puppet lookup`` command, one process each."""
    case = yaml.safe_load((CASES / f"{CLI_CASE}.yaml").read_text())
    root = Path(tempfile.mkdtemp(prefix="cli.", dir=scratch))
    _materialize(case, root)
    results = []
    for query in CLI_QUERIES:
        merge = ["--merge", query["merge"]] if "merge" in query else []
        process = subprocess.run(
            [ruby, shutil.which("puppet") or "puppet", "lookup", *_puppet_args(root, case),
             "--render-as", "json", *merge, query["key"]],
            capture_output=True, text=True, timeout=120)
        if process.returncode == 0:
            results.append({"status": "found", "value": json.loads(process.stdout)})
        else:
            results.append({"status": "notfound" if not process.stdout else "error"})
    return results


def test_batch_driver_agrees_with_puppet_lookup_command(puppet_results: dict) -> None:
    cli = _answers(puppet_results, "__cli__")
    batch = {json.dumps(r["query"], sort_keys=True): r
             for r in _answers(puppet_results, CLI_CASE)}
    for query, from_cli in zip(CLI_QUERIES, cli):
        from_batch = batch[json.dumps(query, sort_keys=True)]
        assert _outcome(from_cli) == _outcome(from_batch), query


# --- merge strategies against Puppet's own MergeStrategy classes, on random values --------------

MERGE_OPTIONS = [
    "unique", "hash", "deep", {"strategy": "deep", "knockout_prefix": "--"},
    {"strategy": "deep", "sort_merged_arrays": True},
    {"strategy": "deep", "merge_hash_arrays": True, "knockout_prefix": "--"}]
_RUBY_MERGES = """
require 'json'; require 'puppet'
JSON.parse(File.read(ARGV[0])).each do |merge, a, b|
  begin
    puts JSON.generate({'ok' => Puppet::Pops::MergeStrategy.strategy(merge).merge(a, b)})
  rescue StandardError => e
    puts JSON.generate({'error' => e.message})
  end
end
"""


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth < 3 and pick < 0.3:
        return {rng.choice("abcd"): _random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    if depth < 3 and pick < 0.6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(["x", "y", "--x", "--", "", 1, 1.0, 2, True, False, None, "z", "--y"])


def _merge_pairs() -> list:
    rng = random.Random(20240521)
    return [[merge, _random_value(rng), _random_value(rng)]
            for _ in range(400) for merge in MERGE_OPTIONS]


def _ruby_merges(ruby: str, scratch: Path) -> list:
    root = Path(tempfile.mkdtemp(prefix="merges.", dir=scratch))
    (root / "pairs.json").write_text(json.dumps(_merge_pairs()))
    process = subprocess.run([ruby, "-e", _RUBY_MERGES, str(root / "pairs.json")],
                             capture_output=True, text=True, timeout=120)
    if process.returncode != 0:
        raise AssertionError(f"ruby merge run failed:\n{process.stderr}")
    return [json.loads(line) for line in process.stdout.splitlines()]


def test_merges_match_puppet_merge_strategies(puppet_results: dict) -> None:
    expected = _answers(puppet_results, "__merge_fuzz__")
    failures = []
    for (merge, higher, lower), puppet in zip(_merge_pairs(), expected):
        try:
            mine = {"ok": merging.strategy(merge).merge(higher, lower)}
        except HieraError:
            mine = {"error": True}
        if ("ok" in mine) != ("ok" in puppet) or ("ok" in mine and json.dumps(mine["ok"]) !=
                                                   json.dumps(puppet["ok"])):
            failures.append(f"{merge} {json.dumps(higher)} <- {json.dumps(lower)}: "
                            f"puppet {puppet} render {mine}")
    assert not failures, f"{len(failures)} merges differ:\n" + "\n".join(failures[:20])
