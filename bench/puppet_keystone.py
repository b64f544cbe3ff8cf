"""puppet-keystone doing render's keystone.conf job: the bench's Puppet comparison.

The manifest holds one ``keystone_config`` resource per option of the keystone.conf render
wrote (repeated keys become one array value, as puppet-keystone manages them). Debian's
provider hard-codes ``/etc/keystone/keystone.conf`` (``file_path`` in
keystone/lib/puppet/provider/keystone_config/openstackconfig.rb), so each ``puppet apply`` runs
in a private mount namespace over an overlay of ``/etc`` whose upper layer is a scratch
directory: the provider writes there, the real ``/etc`` is never written. Every Puppet directory
(confdir, codedir, vardir, rundir, logdir, ssldir) is in the scratch directory too.

Most of an apply's wall time is facter, and most of that is the apt module's ``apt_updates``
facts (``apt-get -s upgrade`` and ``dist-upgrade``): the module is a dependency of
puppet-keystone (through openstacklib and postgresql), so a real host pays it too. The bench also
applies the same manifest with only the modules ``keystone_config`` needs (MINIMAL) on the
module path, Puppet's cheapest honest form of the same job.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

MODULEPATH = "/usr/share/puppet/modules"
PUPPET = "/usr/bin/puppet"
MINIMAL = ("keystone", "openstacklib", "inifile", "stdlib")  # what keystone_config loads
CONF = "keystone/keystone.conf"  # below the overlay's upper layer, i.e. /etc/keystone/...


def ini_settings(text: str) -> dict[str, list[str]]:
    """``section/option`` -> its values in order, from an INI file as render writes it."""
    settings: dict[str, list[str]] = {}
    section = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep or section is None:
            raise ValueError(f"keystone.conf:{number}: not an option of a section: {raw!r}")
        settings.setdefault(f"{section}/{key.strip()}", []).append(value.strip())
    return settings


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def manifest(settings: dict[str, list[str]]) -> str:
    """One keystone_config resource per option; secrets stay out of Puppet's log."""
    lines = []
    for name, values in settings.items():
        value = _quote(values[0]) if len(values) == 1 else \
            "[" + ", ".join(_quote(v) for v in values) + "]"
        secret = "password" in name or "connection" in name or "transport_url" in name
        lines.append(f"keystone_config {{ {_quote(name)}: value => {value}"
                     f"{', secret => true' if secret else ''} }}")
    return "\n".join(lines) + "\n"


def missing() -> str | None:
    """Why the comparison cannot run here, or None."""
    if shutil.which("unshare") is None:
        return "unshare not found (util-linux)"
    if not Path(PUPPET).exists():
        return f"{PUPPET} not found (package puppet)"
    if not Path(MODULEPATH, "keystone", "lib").is_dir():
        return "puppet-module-keystone not installed (make bench-debs)"
    return None


def prepare(scratch: Path, keystone_conf: str, minimal: bool = False) -> list[str]:
    """Write the manifest and Puppet's directories below ``scratch``; return the apply command.
    ``minimal``: a module path of the MINIMAL modules only (symlinks below ``scratch``)."""
    for name in ("confdir", "codedir/environments/production", "vardir", "rundir", "logdir",
                 "ssldir", "etc-upper/keystone", "etc-work"):
        (scratch / name).mkdir(parents=True, exist_ok=True)
    modulepath = MODULEPATH
    if minimal:
        modulepath = str(scratch / "modules")
        (scratch / "modules").mkdir(exist_ok=True)
        for name in MINIMAL:
            link = scratch / "modules" / name
            if not link.is_symlink():
                link.symlink_to(Path(MODULEPATH, name))
    site = scratch / "site.pp"
    site.write_text(manifest(ini_settings(keystone_conf)))
    puppet = [PUPPET, "apply", "--detailed-exitcodes", "--color=false",
              "--modulepath", modulepath, *(f"--{d}={scratch / d}" for d in
                                            ("confdir", "codedir", "vardir", "rundir",
                                             "logdir", "ssldir")), str(site)]
    overlay = (f"lowerdir=/etc,upperdir={scratch / 'etc-upper'},"
               f"workdir={scratch / 'etc-work'}")
    script = f"mount -t overlay overlay -o {shlex.quote(overlay)} /etc && exec {shlex.join(puppet)}"
    # a private PID namespace with its own /proc: facter reads /proc/1/environ, which the
    # host's PID 1 may refuse
    return ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
            "sh", "-c", script]


def written(scratch: Path) -> Path:
    """Where the provider's /etc/keystone/keystone.conf landed (the overlay's upper layer)."""
    return scratch / "etc-upper" / CONF
