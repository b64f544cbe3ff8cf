"""The configuration file and RENDER_<OPTION>: every key shape, the precedence (command line,
then the environment, then the file), bad lines as one file:line error with exit 64, and a run
configured by the file alone, as an operator would."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Tree, render

from renderer.cli import build_parser
from renderer.config import parse_args
from renderer.options import template_path

MEMCACHED = Path("memcached/etc/memcached.conf")
KEYSTONE = Path("keystone/etc/keystone/keystone.conf")


def parsed(argv: list[str], conf: Path | None = None, text: str = "", env: dict | None = None,
           monkeypatch: pytest.MonkeyPatch | None = None):
    if conf is not None:
        conf.write_text(text)
        argv = ["--config", str(conf), *argv]
    for name, value in (env or {}).items():
        assert monkeypatch is not None
        monkeypatch.setenv(name, value)
    return parse_args(build_parser(), argv)


def test_every_key_shape(tmp_path: Path):
    args = parsed(["--all"], tmp_path / "render.conf", """\
# a comment
; another
[render]
machines-dir = /srv/machines
state_dir = /srv/state
host-root=/srv/host
health-timeout = 30s
lock-timeout = 2.5
keep-versions = 7
format = json
no-restart = yes
check = on
diff = false
diff-context = 0
color = never
node = node1.example.com
var = role=compute
      region=two
templates = /etc/site:/usr/share/shipped
    /third
""")
    assert (args.machines_dir, args.state_dir, args.host_root) == \
        ("/srv/machines", "/srv/state", "/srv/host")
    assert (args.health_timeout, args.lock_timeout, args.keep_versions) == (30.0, 2.5, 7)
    assert (args.format, args.no_restart, args.noop, args.diff) == ("json", True, True, False)
    assert (args.diff_context, args.color, args.node) == (0, "never", "node1.example.com")
    assert args.var == ["role=compute", "region=two"]
    assert template_path(args.templates) == (Path("/etc/site"), Path("/usr/share/shipped"),
                                             Path("/third"))


def test_command_line_wins_then_environment_then_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "render.conf"
    text = "[render]\nnode = from-file\nstate-dir = /file\nhost-root = /file\n" \
           "keep-versions = 1\nvar = a=file\ntemplates = /file1:/file2\n"
    env = {"RENDER_NODE": "from-env", "RENDER_STATE_DIR": "/env", "RENDER_KEEP_VERSIONS": "2",
           "RENDER_TEMPLATES": "/env1:/env2"}
    args = parsed(["--all", "--node", "from-cli", "--templates", "/cli1", "--templates",
                   "/cli2:/cli3", "--var", "a=cli"], conf, text, env, monkeypatch)
    assert args.node == "from-cli"       # command line over environment
    assert args.state_dir == "/env"      # environment over file
    assert args.host_root == "/file"     # file over built-in default
    assert args.keep_versions == 2
    assert args.templates == ["/cli1", "/cli2", "/cli3"]  # replaces the path whole, then appends
    assert args.var == ["a=cli"]
    assert parsed(["--all"], conf, text).templates == ["/env1", "/env2"]
    assert parsed(["--all"]).lock_timeout == 60.0  # built-in default


def test_config_file_from_environment_and_missing_default(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "other.conf"
    conf.write_text("[render]\nmachines_dir = /from-env-file\n")
    monkeypatch.setenv("RENDER_CONFIG", str(conf))
    assert parse_args(build_parser(), ["--all"]).machines_dir == "/from-env-file"
    monkeypatch.delenv("RENDER_CONFIG")
    monkeypatch.setattr("renderer.config.DEFAULT_FILE", str(tmp_path / "absent.conf"))
    assert parse_args(build_parser(), ["--all"]).machines_dir == "/var/lib/machines"


@pytest.mark.parametrize(("text", "error"), [
    ("[render]\nhealth-timeout = soon\n",
     "{f}:2: health-timeout: expected seconds between 0 and 3600, not 'soon'"),
    ("[render]\n\nkeep_versions = -1\n", "{f}:3: keep_versions: expected a number from 0 to "
     "1000, not '-1'"),
    ("[render]\nformat = xml\n", "{f}:2: format: expected one of text, json, not 'xml'"),
    ("[render]\nno-restart = maybe\n", "{f}:2: no-restart: expected yes or no, not 'maybe'"),
    ("[render]\nmachine-dir = /x\n", "{f}:2: machine-dir: unknown key"),
    ("[render]\nconfig = /x\n", "{f}:2: config: unknown key"),
    ("node = x\n", "{f}:1: node: outside the [render] section"),
    ("[render]\n[puppet]\n", "{f}:2: unknown section '[puppet]' (only [render])"),
    ("[render]\njust words\n", "{f}:2: expected 'key = value', not 'just words'"),
])
def test_bad_file_line_is_one_line_exit_64(tmp_path: Path, text: str, error: str):
    conf = tmp_path / "render.conf"
    conf.write_text(text)
    result = render("--config", str(conf), "--all")
    assert result.code == 64
    assert result.err == f"render: {error.format(f=conf)}\n"
    assert result.out == ""


def test_bad_environment_value_and_missing_named_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RENDER_HEALTH_TIMEOUT", "5 minutes")
    result = render("--all")
    assert (result.code, result.err) == (64, "render: RENDER_HEALTH_TIMEOUT: health_timeout: "
                                         "expected seconds between 0 and 3600, not '5 minutes'\n")
    monkeypatch.delenv("RENDER_HEALTH_TIMEOUT")
    missing = tmp_path / "nope.conf"
    result = render("--config", str(missing), "--all")
    assert (result.code, result.err) == (64, f"render: {missing}: configuration file not "
                                         "found\n")
    fifo = tmp_path / "fifo.conf"
    __import__("os").mkfifo(fifo)
    result = render("--config", str(fifo), "--all")
    assert (result.code, result.err) == (64, f"render: {fifo}: configuration file is not a "
                                         "regular file\n")


def test_run_from_the_file_alone(tree: Tree, tmp_path: Path):
    """Roots, data, templates and the node from the file: no option but --config."""
    conf = tmp_path / "render.conf"
    conf.write_text(f"""[render]
hieradata = {tree.hieradata}
templates = {tree.templates}
machines-dir = {tree.machines}
host-root = {tree.host}
state-dir = {tree.state}
node = controller1.example.com
no-restart = yes
""")
    result = render("--config", str(conf), "keystone")
    assert result.code == 2, result.err
    assert "memcache_pool_maxsize=20\n" in (tree.machines / KEYSTONE).read_text()  # node level
    assert render("--config", str(conf), "keystone").code == 0


def test_render_node_from_environment(tree: Tree, monkeypatch: pytest.MonkeyPatch):
    options = tree.options()
    at = options.index("--node")
    del options[at:at + 2]
    monkeypatch.setenv("RENDER_NODE", "controller1.example.com")
    result = render("--no-restart", "keystone", *options)
    assert result.code == 2, result.err
    assert "memcache_pool_maxsize=20\n" in (tree.machines / KEYSTONE).read_text()
    lookup = ("lookup", "--hieradata", str(tree.hieradata), "--templates", str(tree.templates),
              "--service", "keystone", "keystone::cache::pool_maxsize")
    assert render(*lookup).out.strip() == "20"
    monkeypatch.delenv("RENDER_NODE")
    assert render(*lookup).out.strip() == "10"


def test_subcommands_read_the_file_and_leave_render_keys_alone(tree: Tree, tmp_path: Path):
    conf = tmp_path / "render.conf"
    conf.write_text(f"[render]\nhieradata = {tree.hieradata}\ntemplates = {tree.templates}\n"
                    f"machines-dir = {tree.machines}\nkeep-versions = 3\n")
    shown = render("show", "--config", str(conf), "memcached")
    assert shown.code == 0, shown.err
    assert "/etc/memcached.conf" in shown.out
    looked = render("lookup", "--config", str(conf), "--service", "memcached",
                    "memcached::memory_mb")
    assert (looked.code, looked.out.strip()) == (0, "1024"), looked.err
    conf.write_text("[render]\nformat = xml\n")
    bad = render("show", "--config", str(conf), "memcached")
    assert bad.code == 64
    assert bad.err.endswith(f"render: {conf}:2: format: expected one of text, json, yaml, "
                            "not 'xml'\n")


def test_readme_example_is_a_valid_file(tmp_path: Path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("```ini\n# /etc/render/render.conf\n", 1)[1].split("```", 1)[0]
    args = parsed(["--all"], tmp_path / "render.conf", example)
    assert (args.health_timeout, args.keep_versions, args.state_dir) == (30.0, 5,
                                                                        "/var/lib/render")
    assert args.templates == ["/etc/render/services", "/usr/share/render/services"]


def test_the_packages_conffile_is_a_valid_file(tmp_path: Path):
    """debian/render.conf, the conffile the package installs, as render and its subcommands read
    it (its keys come from three branches of the parser: roots, outputs, timeouts)."""
    from renderer.lookup import parse_args as lookup_args
    from renderer.show import build_parser as show_parser

    conf = Path(__file__).resolve().parent.parent / "debian" / "render.conf"
    args = parse_args(build_parser(), ["--config", str(conf), "--all"])
    assert (args.machines_dir, args.host_root, args.state_dir) == (
        "/var/lib/machines", "/", "/var/lib/render")
    assert args.fact_file == "/etc/facter/facts.d/render.json"
    assert args.metrics_file == "/var/lib/prometheus/node-exporter/render.prom"
    defaults = conf.read_text().split("# Everything else, with its default:\n", 1)[1]
    uncommented = "[render]\n" + "".join(
        line[2:] + "\n" for line in defaults.splitlines()
        if line.startswith("# ") and "(" not in line)  # "(the host's FQDN)" is no value
    every = tmp_path / "every.conf"
    every.write_text(uncommented + "\n")  # the documented defaults are valid values too
    assert parse_args(build_parser(), ["--config", str(every), "--all"]).keep_versions == 5
    assert lookup_args(["--config", str(conf), "some::key"]).keys == ["some::key"]
    shown = parse_args(show_parser(), ["--config", str(conf), "keystone"], strict=False)
    assert shown.service == "keystone" and shown.state_dir == "/var/lib/render"


def test_abbreviated_config_option_is_the_file_read(tmp_path: Path):
    """argparse takes ``--conf``; the file read before parsing must be that one too."""
    conf = tmp_path / "render.conf"
    conf.write_text("[render]\nkeep-versions = 9\n")
    assert parse_args(build_parser(), ["--conf", str(conf), "--all"]).keep_versions == 9
    assert parse_args(build_parser(), [f"--confi={conf}", "--all"]).keep_versions == 9


def test_help_and_version_work_with_a_broken_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "render.conf"
    conf.write_text("[render]\nbroken\n")
    monkeypatch.setenv("RENDER_CONFIG", str(conf))
    assert render("--help").code == 0
    assert render("--version").code == 0
    assert render("show", "--help").code == 0
    assert render("--all").code == 64


def test_show_by_another_user_ignores_roots_state_dir_from_the_file(tmp_path: Path):
    """The package's file names root's /var/lib/render; ``render show`` by a second user (a
    real one, through setpriv) still works, with a random mask key, while root's uses it."""
    import os
    import subprocess
    import tempfile

    repo = Path(__file__).resolve().parent.parent
    shared = Path(tempfile.mkdtemp(prefix="render-conf-"))
    try:
        shared.chmod(0o755)
        state = shared / "state"
        state.mkdir(mode=0o700)
        conf = shared / "render.conf"
        # nobody reads a copy: a fresh clone lives in a 0700 directory (mktemp -d)
        import shutil

        for part in ("renderer", "hieradata", "service_templates"):
            shutil.copytree(repo / part, shared / part,
                            ignore=shutil.ignore_patterns("__pycache__"))
        for path in shared.rglob("*"):
            if path.parent != state and path != state:
                path.chmod(0o755 if path.is_dir() else 0o644)
        conf.write_text(f"[render]\nstate-dir = {state}\nhieradata = {shared / 'hieradata'}\n"
                        f"templates = {shared / 'service_templates'}\n")
        conf.chmod(0o644)
        key = state / "hmac.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        # Debian's python3 (with Debian's jinja2 and yaml): the venv's may live under /root
        command = ["/usr/bin/python3", "-m", "renderer", "show", "--config", str(conf),
                   "--node", "controller1.example.com", "keystone"]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(shared),
               "PYTHONDONTWRITEBYTECODE": "1"}

        def show(*user: str) -> str:
            done = subprocess.run([*user, *command], capture_output=True, text=True, env=env,
                                  cwd="/", timeout=60)
            assert done.returncode == 0, done.stderr
            assert "<redacted>#" in done.stdout
            return done.stdout

        nobody = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
        assert show(*nobody) != show(*nobody)  # a random key each time: the state dir unread
        explicit = subprocess.run([*command, "--state-dir", str(state)], capture_output=True,
                                  text=True, env=env, cwd="/", timeout=60).stdout
        assert show() == explicit  # root: the file's state dir and its hmac.key
    finally:
        import shutil

        shutil.rmtree(shared)


def test_health_settle_from_the_file_the_environment_and_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from renderer.restarts import HEALTH_SETTLE

    conf = tmp_path / "render.conf"
    assert parsed(["--all"]).health_settle == HEALTH_SETTLE  # the documented constant
    assert parsed(["--all"], conf, "[render]\nhealth-settle = 2s\n").health_settle == 2.0
    env = {"RENDER_HEALTH_SETTLE": "1.5"}
    assert parsed(["--all"], conf, "[render]\nhealth-settle = 2\n", env,
                  monkeypatch).health_settle == 1.5
    assert parsed(["--all", "--health-settle", "0"], conf, "", env,
                  monkeypatch).health_settle == 0.0
