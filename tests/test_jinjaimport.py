"""renderer.jinjaimport: Jinja2 loads without ``inspect``, ``ast`` and OpenSSL until it needs them.

A placeholder module stands in for each until an attribute of it is read; these tests check both
sides: a full render with compiled templates never loads them, and everything that does need them
(compiling, the ``attr`` filter, a later ``import inspect``) gets the real functions.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import REPO, Tree, render
from test_imports import _imported


def _python(code: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *options, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)


def test_jinja2_loads_without_inspect_and_ast() -> None:
    done = _python("import renderer.jinjaimport", "-X", "importtime")
    assert done.returncode == 0, done.stderr[-500:]
    names = _imported(done.stderr)
    assert "jinja2.environment" in names  # the probe itself works
    assert not names & {"inspect", "ast", "dis", "tokenize", "hashlib", "_hashlib", "tempfile",
                        "random"}, sorted(names)


def test_what_needs_them_gets_the_real_modules() -> None:
    """Compiling (``ast.literal_eval`` of a string literal), the ``attr`` filter
    (``inspect.getattr_static``) and later imports: same answers as with the real modules, and
    the placeholders become the real modules' copies; the template cache's keys are hashlib's."""
    probe = """
        import sys
        {first}
        from renderer.jinjaimport import jinja2
        env = jinja2.Environment()
        print(env.from_string('{{{{ "a\\\\tb\\\\u00e9" }}}}|{{{{ x|attr("real") }}}}').render(x=3))
        import random
        random.seed(7)
        text = '{{{{ [1, 2, 3]|random }}}} {{{{ lipsum(1, False, 3, 6) }}}}'
        print(env.from_string(text).render())
        import tempfile
        print(bool(tempfile.gettempdir()))
        import ast, inspect
        print(inspect.getattr_static(int, "real") is int.__dict__["real"],
              ast.literal_eval("[1, 'x']"), inspect.isclass(int),
              sys.modules["inspect"].signature is inspect.signature,
              type(jinja2.nodes.inspect).__name__)
        import hashlib
        print(jinja2.bccache.sha1(b"x").hexdigest() == hashlib.sha1(b"x").hexdigest(),
              jinja2.bccache.Bucket(env, jinja2.BytecodeCache().get_cache_key("t.j2"), "").key)
    """
    deferred = _python(probe.format(first=""))
    real = _python(probe.format(first="import ast, inspect"))
    assert deferred.returncode == 0 and real.returncode == 0, deferred.stderr + real.stderr
    assert deferred.stdout == real.stdout.replace("module\n", "_Deferred\n")
    assert deferred.stdout.splitlines()[0] == "a\tb\u00e9|3"


def test_a_full_render_with_compiled_templates_loads_neither(tree: Tree) -> None:
    """The real run compiles and caches the templates; the next full run (no fast path) renders
    the same files from the cache without ever reading inspect or ast."""
    assert render(*tree.options(), "keystone").code in (0, 2)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "renderer", "--noop",
                           "--no-fast-path", "--diff", "keystone", *tree.options()],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-500:]
    names = _imported(done.stderr)
    assert "jinja2.runtime" in names and "renderer.runner" in names
    assert not names & {"inspect", "ast", "hashlib"}, "a full render loaded inspect, ast or hashlib"
