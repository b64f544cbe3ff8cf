"""Conformance: every case in tests/data/hiera/cases runs through real ``puppet lookup`` and
through ``Hiera.lookup``, and the two must agree exactly: the same JSON (types and hash key order
included), and the same found / not found / error outcome.

Puppet runs isolated (every directory it uses inside the case's temp dir: confdir, vardir,
codedir, rundir, logdir, ssldir, publicdir, ...; empty basemodulepath, the case as its only
environment), one process per case. A case may declare the other layers: ``global_hiera`` and
``global_files`` (Puppet's ``hiera_config`` and its data; else a global hiera.yaml that does not
exist, which Puppet replaces by its built-in one), ``modules`` (``{name: {hiera:, files:}}`` in
the environment's ``modules``) and ``environment`` (its name; production by default).
``puppet_lookup_batch.rb`` runs Puppet's own lookup application but answers all of a case's
queries in one compiled scope. Processes run in
parallel. Puppet's answers are also kept as golden files (``<case>.expected.json``) for review;
``RENDER_UPDATE_GOLDEN=1`` rewrites them, otherwise a change in Puppet's answers fails the test.

Without ``puppet`` on PATH the tests fail: they are the proof that render resolves as Puppet does.
"""

from __future__ import annotations

import io
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
from conftest import puppet_dirs

from renderer import lookup as lookup_command
from renderer.errors import HieraError, LookupNotFound
from renderer.hiera import NOT_GIVEN, Hiera
from renderer.hiera import merge as merging
from renderer.hiera.ruby import to_s
from renderer.scope import build_scope
from renderer.sources import Source

pytestmark = [pytest.mark.puppet, pytest.mark.slow]

DATA = Path(__file__).parent / "data" / "hiera"
CASES = DATA / "cases"
DRIVER = DATA / "puppet_lookup_batch.rb"
SAMPLE = Path(__file__).parent.parent / "hieradata"
NODE = "node1.example.com"
UPDATE = os.environ.get("RENDER_UPDATE_GOLDEN") == "1"
# eyaml cases: the TEST key pair (tests/data/hiera/eyaml) reaches Puppet and render alike through
# the cases' pkcs7_*_key_env_var options, whatever directory each runs in
EYAML_KEYS = DATA / "eyaml"
os.environ["RENDER_TEST_EYAML_PRIVATE_KEY"] = (EYAML_KEYS / "private_key.pkcs7.pem").read_text()
os.environ["RENDER_TEST_EYAML_PUBLIC_KEY"] = (EYAML_KEYS / "public_key.pkcs7.pem").read_text()


def _facts(case: dict) -> dict:
    """The node's names (all four, as puppet lookup demands), then the case's facts."""
    node = case.get("node", NODE)
    hostname, _, domain = node.partition(".")
    return {"hostname": hostname, "domain": domain, "fqdn": node, "clientcert": node,
            **(case.get("facts") or {})}


def _facts_file(case: dict, root: Path) -> Path:
    """The facts file both Puppet and render read: ``facts_text`` verbatim (YAML), else JSON."""
    if "facts_text" in case:
        path = root / "facts.yaml"
        path.write_text(case["facts_text"])
    else:
        path = root / "facts.json"
        path.write_text(json.dumps(_facts(case)))
    return path


# --- queries: what `render lookup` can express, and what Puppet's lookup command builds from it -

STRATEGIES = ("first", "unique", "hash", "deep")
DEEP_FLAGS = ("sort_merged_arrays", "merge_hash_arrays")


def _merge_args(merge: Any) -> list[str] | None:
    """The ``render lookup`` options for a query's merge; None when the CLI cannot express it."""
    if merge is None:
        return []
    if type(merge) is str:
        return ["--merge", merge] if merge in STRATEGIES else None
    if type(merge) is not dict or merge.get("strategy") not in STRATEGIES:
        return None
    extra = {key: value for key, value in merge.items() if key != "strategy"}
    if merge["strategy"] != "deep" or not extra:
        return None if extra else ["--merge", merge["strategy"]]
    if set(extra) - {"knockout_prefix", *DEEP_FLAGS}:
        return None
    args = ["--merge", "deep"]
    if "knockout_prefix" in extra:
        if type(extra["knockout_prefix"]) is not str:
            return None
        args.append(f"--knock-out-prefix={extra['knockout_prefix']}")
    for flag in DEEP_FLAGS:
        if extra.get(flag, False) not in (True, False):
            return None
        if extra.get(flag):
            args.append("--" + flag.replace("_", "-"))
    return args


def _cli_args(query: dict) -> list[str] | None:
    """``render lookup`` arguments for a query (options first), or None."""
    merge = _merge_args(query.get("merge"))
    if merge is None or type(query.get("default", "")) is not str:
        return None
    keys = query["key"] if type(query["key"]) is list else [query["key"]]
    default = ["--default", query["default"]] if "default" in query else []
    wanted = ["--type", query["type"]] if "type" in query else []
    return [*merge, *default, *wanted, "--", *keys]


def _puppet_query(query: dict) -> dict:
    """The query as Puppet runs it: a merge the CLI can express becomes the merge hash Puppet's
    lookup command builds from those options (``--merge deep`` always names both flags)."""
    args = _cli_args(query)
    if args is None or "merge" not in query:
        return query
    options = lookup_command.parse_args(args)
    return {**query, "merge": lookup_command.merge_option(options)}


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


def _write(directory: Path, files: dict | None) -> None:
    for name, content in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _global_config(case: dict, root: Path) -> Path:
    """The case's global hiera.yaml (Puppet's hiera_config); one that does not exist without."""
    return root / ("global" if "global_hiera" in case else "noglobal") / "hiera.yaml"


def _materialize(case: dict, root: Path) -> tuple[Path, Path]:
    """The case as a Puppet environment directory under ``root`` (with its global layer and
    modules); returns it and the facts file."""
    env = root / "envs" / case.get("environment", "production")
    env.mkdir(parents=True)
    (root / "noglobal").mkdir()
    (env / "hiera.yaml").write_text(case.get("hiera", "version: 5\n"))
    _write(env, case.get("files"))
    if "global_hiera" in case:
        _write(root / "global", {"hiera.yaml": case["global_hiera"],
                                 **(case.get("global_files") or {})})
    for module, content in (case.get("modules") or {}).items():
        (env / "modules" / module).mkdir(parents=True)
        _write(env / "modules" / module, {**({"hiera.yaml": content["hiera"]}
                                             if "hiera" in content else {}),
                                          **(content.get("files") or {})})
    if case.get("variables"):
        (env / "manifests").mkdir()
        (env / "manifests" / "site.pp").write_text("".join(
            f"${name} = {_puppet_literal(value)}\n" for name, value in case["variables"].items()))
    return env, _facts_file(case, root)


def _puppet_literal(value: Any) -> str:
    """A value in the Puppet language, for site.pp."""
    if type(value) is list:
        return "[" + ", ".join(map(_puppet_literal, value)) + "]"
    if type(value) is dict:
        return "{" + ", ".join(f"{_puppet_literal(k)} => {_puppet_literal(v)}"
                               for k, v in value.items()) + "}"
    if type(value) is str:
        return json.dumps(value).replace("$", "\\$")
    return "undef" if value is None else json.dumps(value)


def _puppet_args(root: Path, case: dict, facts: Path) -> list[str]:
    return [*puppet_dirs(root / "puppet"), "--basemodulepath", "",
            "--environmentpath", str(root / "envs"),
            "--environment", case.get("environment", "production"),
            "--hiera_config", str(_global_config(case, root)),
            "--facts", str(facts), "--node", case.get("node", NODE),
            *(["--compile"] if case.get("variables") else [])]


def _run_puppet(name: str, case: dict, ruby: str, scratch: Path) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=scratch))
    env, facts = _materialize(case, root)
    (root / "queries.json").write_text(json.dumps([_puppet_query(q) for q in case["queries"]]))
    process = subprocess.run(
        [ruby, str(DRIVER), *_puppet_args(root, case, facts)], capture_output=True, text=True,
        timeout=180, env={**os.environ, "HIERA_QUERIES": str(root / "queries.json"),
                          "HIERA_RESULTS": str(root / "results.jsonl")})
    results_file = root / "results.jsonl"
    if process.returncode != 0 or not results_file.exists():
        raise AssertionError(f"puppet failed on case {name}:\n{process.stdout}\n{process.stderr}")
    results = []
    for query, line in zip(case["queries"], results_file.read_text().split("\n")):
        raw = json.loads(line)
        result = {"query": query, "status": raw["status"]}
        if raw["status"] == "found":
            result["value"] = json.loads(raw["json"])
            result["json"] = raw["json"]
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
    """What ``puppet lookup --render-as json`` prints for a value render returned, parsed back;
    a value it cannot print (NaN, Infinity) is an error, as in Puppet."""
    return json.loads(lookup_command.to_text(value))


def _lookup_api(hiera: Hiera, query: dict, scope: Any) -> Any:
    """``Hiera.lookup``, with several keys tried in order as Puppet's lookup does, and the value
    checked against the query's type as ``render lookup --type`` checks it."""
    keys = query["key"] if type(query["key"]) is list else [query["key"]]
    wanted = lookup_command.parse_type(query.get("type"))
    for key in keys[:-1]:
        try:
            value = hiera.lookup(key, scope, merge=query.get("merge"))
        except LookupNotFound:
            continue
        return lookup_command.checked(wanted, "Found value", value)
    return lookup_command.checked(wanted, "Value", hiera.lookup(
        keys[-1], scope, merge=query.get("merge"),
        default=query["default"] if "default" in query else NOT_GIVEN))


def _run_render(case: dict, root: Path) -> list[dict]:
    """Every query through the Python API, in the scope ``render lookup`` builds."""
    env, facts = _materialize(case, root)
    scope = build_scope(case.get("node", NODE), str(facts),
                        environment=case.get("environment", "production")).with_variables(
        **(case.get("variables") or {}))
    source = Source(env, _global_config(case, root), (env / "modules",), {})
    try:
        hiera = lookup_command.load_hiera(source.config, source)  # None: Hiera 3, ignored
    except HieraError as exc:
        return [{"query": q, "status": "error", "message": str(exc)} for q in case["queries"]]
    results = []
    for query in case["queries"]:
        result: dict[str, Any] = {"query": query}
        try:
            if hiera is None:
                hiera = Hiera.load(_empty_config(root))
            result.update(status="found", value=_jsonable(_lookup_api(hiera, query, scope)))
        except LookupNotFound:
            result["status"] = "notfound"
        except HieraError as exc:
            result.update(status="error", message=str(exc))
        results.append(result)
    return results


def _empty_config(root: Path) -> Path:
    """A hiera.yaml with no levels: the data Puppet sees when it ignores a Hiera 3 file."""
    path = root / "empty-hiera.yaml"
    path.write_text("version: 5\nhierarchy: []\n")
    return path


def _cli_base(case: dict, env: Path, facts: Path) -> list[str] | None:
    """``render lookup`` options for the case's scope; None when --var cannot express it (null)."""
    variables = case.get("variables") or {}
    if any(value is None for value in variables.values()):
        return None
    return ["--hieradata", str(env), "--facts", str(facts), "--node", case.get("node", NODE),
            "--hiera_config", str(_global_config(case, env.parent.parent)),
            "--environment", case.get("environment", "production"), "--basemodulepath", "",
            *(f"--var={name}={_var_text(value)}" for name, value in variables.items())]


def _var_text(value: Any) -> str:
    """A variable as ``--var`` takes it: arrays and hashes as JSON, scalars as Ruby prints them
    (the only way a scalar variable shows, inside an interpolated string)."""
    return json.dumps(value) if type(value) in (list, dict) else to_s(value)


def _run_cli(case: dict, root: Path) -> list[dict | None]:
    """Every query the CLI can express through ``render lookup`` (its main function, in this
    process); None for the others. The status comes from the exit code alone."""
    env, facts = _materialize(case, root)
    base = _cli_base(case, env, facts)
    results: list[dict | None] = []
    for query in case["queries"]:
        args = _cli_args(query)
        if base is None or args is None:
            results.append(None)
            continue
        out, err = io.StringIO(), io.StringIO()
        code = lookup_command.main([*base, *args], out, err)
        result: dict[str, Any] = {"query": query, "code": code, "stdout": out.getvalue(),
                                  "stderr": err.getvalue()}
        if code == 0:
            result.update(status="found", value=json.loads(out.getvalue()),
                          json=out.getvalue().removesuffix("\n"))
        else:
            result.update(status="notfound" if code == 1 else "error",
                          message=err.getvalue().strip())
        results.append(result)
    return results


def _outcome(result: dict) -> str:
    """Status and exact JSON text: json.dumps keeps key order and tells 1 from 1.0 from true."""
    if result["status"] != "found":
        return result["status"]
    return "found " + json.dumps(result["value"], ensure_ascii=False)


def _said(stderr: str) -> str:
    """stderr without render's own hints (how to quote a dotted key): Puppet's line stays one."""
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not line.startswith("render: hint: "))


def _cli_problems(puppet: list[dict], cli: list[dict | None]) -> list[str]:
    """Where ``render lookup`` differs from Puppet: outcome, exact JSON text, exit code, stderr."""
    problems = []
    for p, c in zip(puppet, cli):
        if c is None:
            continue
        query = json.dumps(p["query"])
        if _outcome(p) != _outcome(c):
            problems.append(f"  render lookup {query}:\n    puppet: {_outcome(p)} "
                            f"{p.get('message', '')}\n    render: {_outcome(c)} "
                            f"{c.get('message', '')}")
        elif c["status"] == "found" and c["json"] != p["json"]:
            problems.append(f"  render lookup {query}: JSON text differs:\n    puppet: "
                            f"{p['json']}\n    render: {c['json']}")
        elif c["status"] == "notfound" and not c["stderr"].startswith(
                "Function lookup() did not find a value for "):
            problems.append(f"  render lookup {query}: not Puppet's wording: {c['stderr']!r}")
        elif c["status"] != "found" and (c["stdout"] or _said(c["stderr"]).count("\n") != 1):
            problems.append(f"  render lookup {query}: expected one line on stderr only, got "
                            f"{c['stdout']!r} / {c['stderr']!r}")
    return problems


def _check_case(name: str, case: dict, puppet: list[dict], tmp_path: Path) -> None:
    """The Python API and the ``render lookup`` command both agree with Puppet on every query."""
    render = _run_render(case, tmp_path / "api")
    mismatches = [
        f"  {json.dumps(p['query'])}:\n    puppet: {_outcome(p)} {p.get('message', '')}\n"
        f"    render: {_outcome(r)} {r.get('message', '')}"
        for p, r in zip(puppet, render) if _outcome(p) != _outcome(r)]
    mismatches += _cli_problems(puppet, _run_cli(case, tmp_path / "cli"))
    assert not mismatches, f"case {name} differs from Puppet:\n" + "\n".join(mismatches)


@pytest.mark.parametrize("name", _case_names())
def test_case_matches_puppet(name: str, puppet_results: dict, tmp_path: Path) -> None:
    puppet = _answers(puppet_results, name)
    case = yaml.safe_load((CASES / f"{name}.yaml").read_text())
    _check_case(name, case, puppet, tmp_path)
    golden = CASES / f"{name}.expected.json"
    recorded = [{k: v for k, v in r.items() if k != "json"} for r in puppet]
    if UPDATE or not golden.exists():
        golden.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(golden.read_text())
    assert [_outcome(r) for r in expected] == [_outcome(r) for r in puppet], \
        f"Puppet's answers for {name} changed; review and rerun with RENDER_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", list(_sample_cases()))
def test_sample_hieradata_matches_puppet(name: str, puppet_results: dict, tmp_path: Path) -> None:
    """The repository's own hieradata, every key, as each service sees it."""
    _check_case(name, _sample_cases()[name], _answers(puppet_results, name), tmp_path)


# --- the batch driver answers as the `puppet lookup` command does -------------------------------

CLI_CASE = "cli_options"
CLI_QUERIES = 6  # the first queries of that case, also run through the `puppet lookup` command


def _cli_lookups(ruby: str, scratch: Path) -> list[dict]:
    """The first queries of CLI_CASE through the real ``puppet lookup`` command, one process
    each, with the options ``render lookup`` takes (Puppet's own names for them)."""
    case = yaml.safe_load((CASES / f"{CLI_CASE}.yaml").read_text())
    root = Path(tempfile.mkdtemp(prefix="cli.", dir=scratch))
    _, facts = _materialize(case, root)
    results = []
    for query in case["queries"][:CLI_QUERIES]:
        args = _cli_args(query)
        assert args is not None, query
        process = subprocess.run(
            [ruby, shutil.which("puppet") or "puppet", "lookup", *_puppet_args(root, case, facts),
             "--render-as", "json", *args], capture_output=True, text=True, timeout=120)
        results.append({"code": process.returncode, "stdout": process.stdout.strip()})
    return results


def test_batch_driver_agrees_with_puppet_lookup_command(puppet_results: dict) -> None:
    """The batch driver, given the merge hash render builds from the options, answers as the
    ``puppet lookup`` command given the options themselves (value text, or exit 1)."""
    commands = _answers(puppet_results, "__cli__")
    batch = _answers(puppet_results, CLI_CASE)
    assert len(commands) == CLI_QUERIES
    for command, answer in zip(commands, batch):
        if answer["status"] == "found":
            assert (command["code"], command["stdout"]) == (0, answer["json"]), answer["query"]
        else:
            assert (command["code"], command["stdout"]) == (1, ""), answer["query"]


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
