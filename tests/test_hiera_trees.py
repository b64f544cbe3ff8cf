"""Conformance at scale: real public hieradata trees (tests/data/hiera/trees/<name>/, each with its
licence and a NOTICE naming source, commit and licence), every key of every data file looked up
under several nodes' facts (tests/data/hiera/trees/<name>.yaml) with the default, deep, hash and
unique merges, through real ``puppet lookup`` and through render; every answer must be equal (the
same JSON text, or not found in both, or an error in both: error messages are not compared).

One Puppet process per tree and node (``puppet_lookup_batch.rb``), run in parallel. Every query
goes through ``Hiera.lookup``; one in CLI_EVERY also through the ``render lookup`` command, which
must then agree with Puppet on exit code and JSON text too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import puppet_dirs
from test_hiera_puppet import (
    _answers,
    _cli_problems,
    _facts_file,
    _materialize,
    _outcome,
    _puppet_query,
    _ruby,
    _run_cli,
    _run_puppet,
    _run_render,
)

pytestmark = [pytest.mark.puppet, pytest.mark.slow]

TREES = Path(__file__).parent / "data" / "hiera" / "trees"
DRIVER = TREES.parent / "puppet_lookup_nodes.rb"
MERGES: tuple[dict, ...] = ({}, {"merge": "deep"}, {"merge": "hash"}, {"merge": "unique"})
SINGLE = "psick-yaml-data"  # its last node also runs through puppet_lookup_batch.rb alone
CLI_EVERY = 9  # one query in so many also runs through `render lookup` (its start costs more)


def _tree_names() -> list[str]:
    return sorted(p.stem for p in TREES.glob("*.yaml"))


def _tree_dirs() -> list[str]:
    return sorted(p.name for p in TREES.iterdir() if p.is_dir())


def _spec(name: str) -> dict:
    return yaml.safe_load((TREES / f"{name}.yaml").read_text())


def _tree_keys(files: dict[str, str]) -> list[str]:
    """Every top-level key of every data file, sorted (lookup_options is not a key to look up)."""
    keys: set[str] = set()
    for path, text in files.items():
        if path.endswith(".yaml") and "/data/" in f"/{path}":
            keys.update(str(key) for key in (yaml.safe_load(text) or {}))
    return sorted(keys - {"lookup_options"})


TOKEN = re.compile(r"ENC\[PKCS7,[A-Za-z0-9+/=\s]+\]")


def _test_key(keys_dir: Path) -> list[str]:
    """A PKCS7 key pair made by the real ``eyaml createkeys`` in ``keys_dir`` (once), as the
    eyaml options that name it."""
    options = [f"--pkcs7-private-key={keys_dir}/private_key.pkcs7.pem",
               f"--pkcs7-public-key={keys_dir}/public_key.pkcs7.pem"]
    if not (keys_dir / "private_key.pkcs7.pem").exists():
        subprocess.run(["eyaml", "createkeys", *options], check=True, capture_output=True,
                       timeout=60)
    return options


def _reencrypted(text: str, keys_dir: Path, scratch: Path) -> str:
    """``text`` with every site token replaced by one the real ``eyaml encrypt -e`` makes with
    the test key, of a plaintext named after the site token (the site's plaintext is unknown)."""
    def plain(match: re.Match) -> str:
        return f"DEC::PKCS7[test-{hashlib.sha256(match[0].encode()).hexdigest()[:12]}]!"
    marked = TOKEN.sub(plain, text)
    if marked == text:
        return text
    source = Path(tempfile.mkstemp(suffix=".eyaml", dir=scratch)[1])
    source.write_text(marked)
    return subprocess.run(["eyaml", "encrypt", "-e", str(source), *_test_key(keys_dir)],
                          check=True, capture_output=True, text=True, timeout=60).stdout


def _tree_cases(name: str, keys_dir: Path) -> dict[str, dict]:
    """The tree as one conformance case per node (test_hiera_puppet's case format). A spec may
    read another spec's ``tree`` through a different ``hiera_file`` (a module's, as the
    environment's), edited by ``replace`` ([old, new] pairs), with files under a ``relocate``
    prefix moved (out of the module path, say); key paths named by ``key_paths``
    are pointed at ``keys_dir``, a directory that holds no key unless the spec asks for a
    ``test_key``: then every site token is re-encrypted with a test key made there."""
    spec = _spec(name)
    root = TREES / spec.get("tree", name)
    files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
             if p.is_file() and p.relative_to(root) != Path("hiera.yaml")}
    for old, new in spec.get("relocate") or ():
        files = {new + path.removeprefix(old) if path.startswith(old) else path: text
                 for path, text in files.items()}
    hiera_file = root / spec.get("hiera_file", "hiera.yaml")
    hiera = hiera_file.read_text() if hiera_file.exists() else spec["hiera"]
    for old, new in spec.get("replace") or ():
        assert old in hiera, f"{name}: {old!r} is not in {hiera_file}"
        hiera = hiera.replace(old, new)
    if spec.get("key_paths"):
        hiera = hiera.replace(spec["key_paths"], f"{keys_dir}/")
    if spec.get("test_key"):
        keys_dir.mkdir(parents=True, exist_ok=True)
        files = {path: _reencrypted(text, keys_dir, keys_dir.parent) if path.endswith(".yaml")
                 else text for path, text in files.items()}
    queries = [{"key": key, **merge} for key in _tree_keys(files) for merge in MERGES]
    return {f"{name}@{node['node']}": {"hiera": hiera, "files": files, "node": node["node"],
                                       "facts": node.get("facts") or {}, "queries": queries}
            for node in spec.get("nodes") or _spec(spec["tree"])["nodes"]
            if node["node"] in spec.get("only_nodes", [node["node"]])}


def _run_puppet_tree(name: str, cases: dict[str, dict], ruby: str, scratch: Path) -> dict:
    """Every node's queries of one tree through real Puppet, in one process (one environment,
    one facts file per node); returns each case's results as test_hiera_puppet's _run_puppet."""
    root = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=scratch))
    first = next(iter(cases.values()))
    env, _ = _materialize(first, root)
    jobs = []
    for number, (case, body) in enumerate(cases.items()):
        job = root / f"node{number}"
        job.mkdir()
        (job / "queries.json").write_text(json.dumps([_puppet_query(q) for q in body["queries"]]))
        jobs.append({"case": case, "node": body["node"], "facts": str(_facts_file(body, job)),
                     "queries": str(job / "queries.json"), "results": str(job / "results.jsonl")})
    (root / "jobs.json").write_text(json.dumps(jobs))
    process = subprocess.run(
        [ruby, str(DRIVER), *puppet_dirs(root / "puppet"), "--basemodulepath", "",
         "--environmentpath", str(root / "envs"), "--environment", "production",
         "--hiera_config", str(root / "noglobal" / "hiera.yaml")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HIERA_JOBS":
                                                          str(root / "jobs.json")})
    if process.returncode != 0:
        raise AssertionError(f"puppet failed on tree {name}:\n{process.stdout}\n{process.stderr}")
    answers = {}
    for job in jobs:
        lines = Path(job["results"]).read_text().splitlines()
        results = []
        for query, line in zip(cases[job["case"]]["queries"], lines, strict=True):
            raw = json.loads(line)
            result = {"query": query, "status": raw["status"]}
            if raw["status"] == "found":
                result.update(value=json.loads(raw["json"]), json=raw["json"])
            elif raw["status"] == "error":
                result["message"] = raw["message"].replace(str(env), "<env>")
            results.append(result)
        answers[job["case"]] = results
    return answers


@pytest.fixture(scope="module")
def tree_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict] | None:
    """Every tree's cases and Puppet's answers to them (a failure kept per case); None without
    Puppet."""
    ruby = _ruby()
    if ruby is None:
        return None
    scratch = tmp_path_factory.mktemp("trees")
    trees = {name: _tree_cases(name, scratch / f"keys-{name}") for name in _tree_names()}
    single, single_case = list(trees[SINGLE].items())[-1]
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(_run_puppet_tree, name, cases, ruby, scratch)
                   for name, cases in trees.items()}
        one = pool.submit(_run_puppet, "single", single_case, ruby, scratch)
    cases = {case: body for tree in trees.values() for case, body in tree.items()}
    answers: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            answers.update(future.result())
        except Exception as exc:  # reported by the tests of that tree
            answers.update(dict.fromkeys(trees[name], exc))
    try:
        answers[f"single:{single}"] = one.result()
    except Exception as exc:  # reported by test_nodes_driver_answers_as_batch_driver
        answers[f"single:{single}"] = exc
    return cases, answers


def _sampled(case: dict) -> dict:
    return {**case, "queries": case["queries"][::CLI_EVERY]}


def _tree_problems(case: dict, puppet: list[dict], root: Path) -> list[str]:
    render = _run_render(case, root / "api")
    problems = [
        f"  {json.dumps(p['query'])}:\n    puppet: {_outcome(p)} {p.get('message', '')}\n"
        f"    render: {_outcome(r)} {r.get('message', '')}"
        for p, r in zip(puppet, render) if _outcome(p) != _outcome(r)]
    return problems + _cli_problems(puppet[::CLI_EVERY], _run_cli(_sampled(case), root / "cli"))


@pytest.mark.parametrize("name", _tree_names())
def test_tree_matches_puppet(name: str, tree_results: tuple[dict, dict] | None,
                             tmp_path: Path) -> None:
    """Every key of the tree, under every node's facts and every merge, as Puppet answers."""
    if tree_results is None:
        _answers(None, name)
    assert tree_results is not None
    cases, answers = tree_results
    failures = []
    for case in sorted(c for c in cases if c.startswith(f"{name}@")):
        problems = _tree_problems(cases[case], _answers(answers, case),
                                  Path(tempfile.mkdtemp(dir=tmp_path)))
        failures += [f"{case}: {len(problems)} answers differ ({len(cases[case]['queries'])} "
                     "queries)",
                     *problems[:15]] if problems else []
    assert not failures, f"tree {name} differs from Puppet:\n" + "\n".join(failures)


@pytest.mark.parametrize("name", _tree_dirs())
def test_tree_is_vendored_with_licence(name: str) -> None:
    """Each tree keeps its licence and a NOTICE line (source repository, commit, licence)."""
    root = TREES / name
    assert list(root.rglob("LICENSE")), f"{root}: no LICENSE"
    notice = (root / "NOTICE").read_text().split()
    assert len(notice) > 3 and "/" in notice[0] and len(notice[1]) == 40, f"{root}/NOTICE"


@pytest.mark.parametrize("name", _tree_names())
def test_puppet_finds_the_tree_data(name: str, tree_results: tuple[dict, dict] | None) -> None:
    """The tree and its facts are wired up right: Puppet finds a value for every node (and
    decrypts a re-encrypted token), and all nodes' facts together reach most of the tree's keys
    (each file is some node's level) unless the spec picks ``only_nodes``."""
    if tree_results is None:
        _answers(None, name)
    assert tree_results is not None
    cases, answers = tree_results
    reached: set[str] = set()
    for case in (c for c in cases if c.startswith(f"{name}@")):
        found = {r["query"]["key"] for r in _answers(answers, case)
                 if "merge" not in r["query"] and r["status"] == "found"}
        assert found, f"{case}: Puppet found no key of the tree"
        reached |= found
        if _spec(name).get("test_key"):
            assert any(re.search(r'"test-[0-9a-f]{12}"', r.get("json", ""))
                       for r in _answers(answers, case)), f"{case}: Puppet decrypted no token"
    if _spec(name).get("only_nodes"):
        return
    keys = {q["key"] for c in cases if c.startswith(f"{name}@") for q in cases[c]["queries"]}
    assert len(reached) * 10 >= len(keys) * 9, \
        f"{name}: the nodes reach only {len(reached)} of {len(keys)} keys: {sorted(keys - reached)}"


def test_nodes_driver_answers_as_batch_driver(tree_results: tuple[dict, dict] | None) -> None:
    """Several nodes in one Puppet process answer as each node alone does: the last node of
    SINGLE, after the others in the same process, through puppet_lookup_batch.rb on its own."""
    if tree_results is None:
        _answers(None, SINGLE)
    assert tree_results is not None
    cases, answers = tree_results
    last = [c for c in cases if c.startswith(f"{SINGLE}@")][-1]
    alone, together = _answers(answers, f"single:{last}"), _answers(answers, last)
    assert [(r["status"], r.get("json")) for r in alone] == \
        [(r["status"], r.get("json")) for r in together]
