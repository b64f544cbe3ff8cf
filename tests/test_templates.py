"""Templates: strict undefined, lookup() with default and merge, errors with template:line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_bound

from renderer.bccache import SignedBytecodeCache
from renderer.errors import HieraRecursionError, LookupNotFound, ServiceErrors, TemplateError
from renderer.hiera import NOT_GIVEN, Sensitive
from renderer.scope import Scope
from renderer.system.dryrun import DryRunSystem
from renderer.system.real import RealSystem
from renderer.templates import Renderer, bytecode_cache

DATA = {"a::port": 11211, "a::hosts": ["h1", "h2"], "a::password": Sensitive("pw-1234")}


def fake_lookup(key: str, merge: object = None, default: object = NOT_GIVEN) -> object:
    if key in DATA:
        return DATA[key]
    if default is not NOT_GIVEN:
        return default
    raise LookupNotFound(key)


def make(tmp_path: Path, template: str) -> tuple[Renderer, object]:
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "service.yaml").write_text("files:\n  - template: t.j2\n    dest: /etc/t\n")
    (svc / "t.j2").write_text(template)
    return Renderer(tmp_path), load_bound(tmp_path, "svc")


def render(tmp_path: Path, template: str, secrets: set[str] | None = None) -> str:
    renderer, service = make(tmp_path, template)
    scope = Scope({"fqdn": "n1.example.com"}, {"certname": "n1"}, {"service": "svc"})
    out = renderer.render_service(service, fake_lookup, scope, set() if secrets is None
                                  else secrets)
    return out[0].data.decode()


def test_lookup_default_scope_and_loops(tmp_path: Path):
    text = render(tmp_path, "{% for h in lookup('a::hosts') %}{{ h }}:{{ lookup('a::port') }}\n"
                            "{% endfor %}x={{ lookup('nope', default='d') }}\n"
                            "{{ facts.fqdn }} {{ trusted.certname }} {{ service }} {{ machine }}\n")
    assert text == "h1:11211\nh2:11211\nx=d\nn1.example.com n1 svc svc\n"


def test_do_and_loop_controls_parse_once_a_template_is_compiled(tmp_path: Path):
    """The extensions are loaded by the first parse (renderer.templates._Environment), not by
    the environment: a template compiled fresh still has them."""
    text = render(tmp_path, "{% set l = [] %}{% for h in lookup('a::hosts') %}"
                            "{% if h == 'h2' %}{% break %}{% endif %}{% do l.append(h) %}"
                            "{% continue %}x{% endfor %}{{ l | join(',') }}\n")
    assert text == "h1\n"


def test_sensitive_unwrapped_and_remembered(tmp_path: Path):
    secrets: set[str] = set()
    assert render(tmp_path, "pw={{ lookup('a::password') }}\n", secrets) == "pw=pw-1234\n"
    assert secrets == {"pw-1234"}


def test_undefined_variable_names_template_and_line(tmp_path: Path):
    with pytest.raises(TemplateError) as info:
        render(tmp_path, "a\nb\n{{ nope }}\n")
    assert (Path(info.value.path).name, info.value.line) == ("t.j2", 3)
    assert "'nope' is undefined" in info.value.message


def test_missing_key_names_key_and_line(tmp_path: Path):
    with pytest.raises(TemplateError) as info:
        render(tmp_path, "\n\nx={{ lookup('a::missing') }}\n")
    assert info.value.line == 3 and "'a::missing'" in info.value.message


def test_every_missing_key_of_the_file_in_one_error(tmp_path: Path):
    """Rendering goes on past a missing key (a placeholder prints as '', iterates as empty),
    so each is named at its line; a key missed twice on one line (a loop) is said once, and
    what the template then does with a placeholder is not another error."""
    with pytest.raises(ServiceErrors) as info:
        render(tmp_path, "a={{ lookup('m::one') }}\n"
                         "{% for h in lookup('m::hosts') %}{{ h }}{% endfor %}\n"
                         "{% for i in [1, 2] %}{{ lookup('m::loop') }}{% endfor %}\n"
                         "ok={{ lookup('a::port') }}\n"
                         "b={{ lookup('m::two').x.y | upper }}\n"
                         "c={{ lookup('m::three') + 1 }}\n"
                         "d={{ lookup('m::after') }}\n")
    assert [(e.line, e.message.split("'")[1]) for e in info.value.errors] == [
        (1, "m::one"), (2, "m::hosts"), (3, "m::loop"), (5, "m::two"), (6, "m::three")]
    assert all(isinstance(e, TemplateError) and e.service == "svc" for e in info.value.errors)


def test_missing_key_in_a_shared_macro_names_the_calling_line(tmp_path: Path):
    (tmp_path / "_lib").mkdir()
    (tmp_path / "_lib" / "m.j2").write_text(
        "{% macro url(p) -%}\n{{ lookup(p ~ '::host') }}:{{ lookup(p ~ '::port', default=1) }}"
        "\n{%- endmacro %}\n")
    with pytest.raises(ServiceErrors) as info:
        render(tmp_path, '{% from "m.j2" import url with context %}\n\nu={{ url("x") }}\n'
                         "v={{ url('y') }}\n")
    assert [(Path(e.path).name, e.line, e.via) for e in info.value.errors] == [
        ("t.j2", 3, "_lib/m.j2:2"), ("t.j2", 4, "_lib/m.j2:2")]
    assert str(info.value.errors[0]).endswith(
        "t.j2:3 (via _lib/m.j2:2): hiera key 'x::host' not found and no default given")


def test_undefined_variable_in_a_shared_macro_names_the_calling_line(tmp_path: Path):
    (tmp_path / "_lib").mkdir()
    (tmp_path / "_lib" / "m.j2").write_text("{% macro f() -%}\n\n{{ nope }}\n{%- endmacro %}\n")
    with pytest.raises(TemplateError) as info:
        render(tmp_path, '{% import "m.j2" as m %}\nx={{ m.f() }}\n')
    assert (Path(info.value.path).name, info.value.line, info.value.via) == \
        ("t.j2", 2, "_lib/m.j2:3")


def test_hiera_error_without_location_gets_the_templates(tmp_path: Path):
    def looping(key: str, merge: object = None, default: object = NOT_GIVEN) -> object:
        raise HieraRecursionError("Recursive lookup detected in [a, b]")

    renderer, service = make(tmp_path, "\n{{ lookup('a') }}\n")
    with pytest.raises(HieraRecursionError) as info:
        renderer.render_service(service, looping, Scope(), set())
    assert (Path(info.value.path).name, info.value.line) == ("t.j2", 2)
    assert info.value.service == "svc"


def test_syntax_error_has_line(tmp_path: Path):
    with pytest.raises(TemplateError) as info:
        render(tmp_path, "ok\n{% if %}\n")
    assert info.value.line == 2 and "syntax" in info.value.message


def test_runtime_error_in_template_has_line(tmp_path: Path):
    with pytest.raises(TemplateError) as info:
        render(tmp_path, "\n{{ 1 // 0 }}\n")
    assert info.value.line == 2 and "ZeroDivisionError" in info.value.message


def test_bytecode_cache_written_by_real_runs_only(tmp_path: Path):
    state = tmp_path / "state"
    dry = DryRunSystem(RealSystem(["true"], state))
    assert bytecode_cache(dry.cache_dir("cache/jinja", create=True), False, b"k" * 32) is None
    assert not state.exists()  # noop creates nothing
    _, service = make(tmp_path, "x={{ lookup('a::port') }}\n")
    real = RealSystem(["true"], state)
    renderer = Renderer(tmp_path, bytecode_cache(real.cache_dir("cache/jinja", True), True,
                                                 b"k" * 32))
    renderer.render_service(service, fake_lookup, Scope(), set())
    cache_dir = state / "cache" / "jinja"
    assert len(list(cache_dir.iterdir())) == 1 and cache_dir.stat().st_mode & 0o777 == 0o700
    cache = bytecode_cache(dry.cache_dir("cache/jinja", True), False, b"k" * 32)
    assert isinstance(cache, SignedBytecodeCache) and not cache.writable


def _tree_listing(top: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(top.rglob("*"))}


@pytest.mark.slow  # a real run and a --noop run of every sample service
def test_noop_after_a_real_run_loads_bytecode_and_writes_nothing(tree, monkeypatch):
    """--noop compiles nothing a real run compiled (it loads the signed bytecode) and leaves
    the state dir as it was: same entries, sizes, modes and mtimes."""
    import jinja2
    from conftest import render as run_render

    assert run_render("--systemctl", "true", "--all", *tree.options()).code == 2  # changed
    before = _tree_listing(tree.state)
    assert any("cache/jinja/" in name for name in before)
    compiled: list[str] = []
    original = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(filename or name or "?")
        return original(self, source, name, filename, raw, defer_init)

    loaded: list[str] = []
    original_load = SignedBytecodeCache.load_bytecode

    def counting_load(self, bucket):
        original_load(self, bucket)
        if bucket.code is not None:
            loaded.append(bucket.key)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    monkeypatch.setattr(SignedBytecodeCache, "load_bytecode", counting_load)
    result = run_render("--noop", "--all", *tree.options())
    assert result.code == 0, result.err
    assert compiled == [] and len(loaded) > 10
    assert _tree_listing(tree.state) == before


def test_one_environment_compiles_lib_once_and_keeps_each_services_own(tmp_path: Path):
    """Services share one environment: ``_lib`` is compiled once for all of them, while each
    service's own ``t.j2`` (and its own copy of a ``_lib`` name) resolves in its folder first."""
    lib = tmp_path / "_lib"
    lib.mkdir()
    (lib / "m.j2").write_text("{% macro who() %}lib{% endmacro %}")
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "service.yaml").write_text("files:\n  - template: t.j2\n    dest: /etc/t\n")
        (folder / "t.j2").write_text(f"{{% from 'm.j2' import who %}}{name}={{{{ who() }}}}\n")
    (tmp_path / "c" / "m.j2").write_text("{% macro who() %}own{% endmacro %}")
    renderer = Renderer(tmp_path)
    out = {name: renderer.render_service(load_bound(tmp_path, name), fake_lookup, Scope(),
                                         set())[0].data.decode() for name in ("a", "b", "c")}
    assert out == {"a": "a=lib\n", "b": "b=lib\n", "c": "c=own\n"}
    names = [template.name for template in renderer._env.cache.values()]
    assert sorted(Path(n).relative_to(tmp_path).as_posix() for n in names) == \
        ["_lib/m.j2", "a/t.j2", "b/t.j2", "c/m.j2", "c/t.j2"]
