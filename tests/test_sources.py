"""renderer.sources and the layers it names: defaults for Debian's and the AIO layout, the global
hiera.yaml as ``render`` and ``render lookup`` take it, --backend LEVEL=skip, the one-line errors
for what render cannot read (a version 3 global hiera.yaml, a backend it cannot run)."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import pytest

from renderer import lookup as lookup_command
from renderer import sources
from renderer.errors import HieraConfigError, UsageError
from renderer.hiera import Hiera
from renderer.scope import Scope

ENV_HIERA = """\
version: 5
hierarchy:
  - name: common
    path: common.yaml
  - name: vault
    lookup_key: vault_lookup
    uri: https://vault.example.com
"""


def _args(**given: object) -> argparse.Namespace:
    values = {"hieradata": None, "environment": "production", "environmentpath": None,
              "hiera_config": None, "basemodulepath": None, "backend": []}
    return argparse.Namespace(**{**values, **given})


def test_defaults_pick_the_layout_that_exists(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    debian, aio = tmp_path / "debian" / "environments", tmp_path / "aio" / "environments"
    monkeypatch.setattr(sources, "ENVIRONMENTPATHS", (debian, aio))
    monkeypatch.setattr(sources, "HIERA_CONFIGS", (tmp_path / "d.yaml", tmp_path / "a.yaml"))
    assert sources.default_environmentpath() == str(debian)  # neither: Debian's
    aio.mkdir(parents=True)
    (tmp_path / "a.yaml").write_text("version: 5\n")
    source = sources.from_args(_args(environment="dev"))
    assert source.environment == aio / "dev"
    assert source.hiera_config == tmp_path / "a.yaml"
    assert source.modulepath[0] == aio / "dev" / "modules"
    assert source.modulepath[1:] == (Path("/etc/puppetlabs/code/modules"),
                                     Path("/opt/puppetlabs/puppet/modules"))
    debian.mkdir(parents=True)
    assert sources.default_environmentpath() == str(debian)  # both: Debian's


def test_hieradata_wins_and_backend_is_checked(tmp_path: Path) -> None:
    source = sources.from_args(_args(hieradata=str(tmp_path), basemodulepath="",
                                     backend=["vault=skip"]))
    assert (source.environment, source.modulepath) == (tmp_path, (tmp_path / "modules",))
    assert source.backends == {"vault": "skip"}
    with pytest.raises(UsageError, match="expected LEVEL=skip"):
        sources.from_args(_args(backend=["vault=ignore"]))


def _env(tmp_path: Path) -> Path:
    env = tmp_path / "env"
    (env / "data").mkdir(parents=True)
    (env / "hiera.yaml").write_text(ENV_HIERA)
    (env / "data" / "common.yaml").write_text("a: env\n")
    return env


def test_unrunnable_backend_is_an_error_naming_the_level_unless_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = _env(tmp_path)
    with pytest.raises(HieraConfigError) as caught:
        Hiera.load(env / "hiera.yaml")
    assert "hierarchy 'vault' uses lookup_key: vault_lookup" in str(caught.value)
    assert "--backend 'vault=skip'" in str(caught.value) and "hiera.yaml:6:" in str(caught.value)
    source = sources.Source(env, None, (), {"vault": "skip"})
    with caplog.at_level(logging.WARNING):
        hiera = source.load()
    assert hiera.lookup("a", Scope()) == "env"
    assert "'vault' is skipped (--backend vault=skip): Puppet would consult it" in caplog.text


def test_version_3_global_hiera_yaml_is_one_clear_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "global.yaml").write_text(":backends:\n  - yaml\n:yaml:\n  :datadir: /x\n")
    with pytest.raises(HieraConfigError, match="global hiera.yaml of version 3") as caught:
        Hiera.load(env / "hiera.yaml", tmp_path / "global.yaml", (), {"vault": "skip"})
    assert str(tmp_path / "global.yaml") in str(caught.value)


def test_render_lookup_reads_the_global_layer_first(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "global.yaml").write_text("version: 5\ndefaults:\n  datadir: gdata\n"
                                          "  data_hash: yaml_data\nhierarchy:\n"
                                          "  - {name: g, path: common.yaml}\n")
    (tmp_path / "gdata").mkdir()
    (tmp_path / "gdata" / "common.yaml").write_text("a: global\n")
    out, err = io.StringIO(), io.StringIO()
    base = ["--hieradata", str(env), "--backend", "vault=skip", "--node", "n.example.com"]
    code = lookup_command.main([*base, "--hiera-config", str(tmp_path / "global.yaml"), "a"],
                               out, err)
    assert (code, out.getvalue()) == (0, '"global"\n'), err.getvalue()
    out = io.StringIO()
    code = lookup_command.main([*base, "--hiera-config", str(tmp_path / "none.yaml"), "a"],
                               out, io.StringIO())
    assert (code, out.getvalue()) == (0, '"env"\n')


def test_missing_hiera_yaml_hint_names_options_and_variables(tmp_path: Path) -> None:
    hint = sources.missing_hint(sources.from_args(_args(hieradata=str(tmp_path))))
    assert str(tmp_path / "hiera.yaml") in hint
    for name in ("--hieradata", "RENDER_HIERADATA", "--environment", "RENDER_ENVIRONMENT"):
        assert name in hint


def test_trusted_extensions_are_given_by_option_and_refused_as_var(tmp_path: Path) -> None:
    """Puppet's role pattern roles/%{trusted.extensions.pp_role}.yaml; --var trusted.* would be a
    fact named trusted, never $trusted: one clear line instead."""
    env = tmp_path / "env"
    (env / "data" / "roles").mkdir(parents=True)
    (env / "hiera.yaml").write_text("version: 5\nhierarchy:\n  - name: role\n"
                                    "    path: \"roles/%{trusted.extensions.pp_role}.yaml\"\n")
    (env / "data" / "roles" / "web.yaml").write_text("port: 80\n")
    base = ["--hieradata", str(env), "--node", "n.example.com", "port"]
    out, err = io.StringIO(), io.StringIO()
    assert lookup_command.main(["--trusted-extension", "pp_role=web", *base], out, err) == 0
    assert out.getvalue() == "80\n"
    err = io.StringIO()
    code = lookup_command.main(["--var", "trusted.extensions.pp_role=web", *base],
                               io.StringIO(), err)
    assert code == 64 and err.getvalue().count("\n") == 1
    assert "use --trusted-extension KEY=VALUE" in err.getvalue()
