"""Validate rendered files before anything is written.

A file that its service would refuse to read must never reach the disk, because the restart that
follows would take the service down. Each file declares its syntax in service.yaml
(``validate: ini | systemd | libvirt``); errors carry the template's rendered file and line, and
quote the line only masked (``mask``: the run's masker, which knows this service's Sensitive
values by then). Every bad line of every file is reported in one run (at most MAX_ERRORS of them
per service).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from renderer.errors import RenderError, ValidationError, each_error, raise_all
from renderer.masking import Masker
from renderer.templates import Rendered

_SECTION = re.compile(r"^\[[^\[\]]+\]\s*$")
_INI_ASSIGN = re.compile(r"^[^=:\s][^=:]*[=:]")
_SYSTEMD_ASSIGN = re.compile(r"^[A-Za-z0-9_-]+\s*=")
# libvirt's conf format (virconf.c): `name = value`, a value an integer, a string in "" or ''
# (no escapes) or a list of those in [ ]; libvirtd and the QEMU driver then read it for real
# in tests/test_catalog_checks.py.
_LV_SCALAR = r"""(-?[0-9]+|"[^"\n]*"|'[^'\n]*')"""
_LIBVIRT_ASSIGN = re.compile(
    rf"^[A-Za-z_][A-Za-z0-9_.]*\s*=\s*({_LV_SCALAR}|\[\s*({_LV_SCALAR}\s*(,\s*{_LV_SCALAR}\s*)*,?)?\s*\])"
    r"\s*(#.*)?$")
MAX_ERRORS = 20  # per service: a file of binary junk must not print thousands of lines


def _quoted(line: str, mask: Callable[[str], str] | None) -> str:
    """The start of a bad line, masked whole before it is cut (a cut secret is not known)."""
    return repr((mask(line) if mask else line).strip()[:60])


def _check_lines(rendered: Rendered, assign: re.Pattern[str], comments: tuple[str, ...],
                 continuation: bool, what: str, mask: Callable[[str], str] | None = None) -> None:
    raise_all(_line_errors(rendered, assign, comments, continuation, what, mask))


def _line_errors(rendered: Rendered, assign: re.Pattern[str], comments: tuple[str, ...],
                 continuation: bool, what: str, mask: Callable[[str], str] | None
                 ) -> list[RenderError]:
    """Every bad line of one file."""
    errors: list[RenderError] = []
    text = rendered.data.decode("utf-8")
    in_section = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(comments):
            continue
        if _SECTION.match(stripped):
            in_section = True
            continue
        if continuation and line[:1] in (" ", "\t") and in_section:
            continue  # an indented line continues the previous value (oslo's iniparser)
        if not in_section:  # said once: the lines after a broken header would all repeat it
            errors.append(ValidationError(
                f"{what}: option outside of any [section]: {_quoted(line, mask)}",
                path=f"{rendered.spec.dest} (from {rendered.spec.template})", line=number))
            in_section = True
        elif not assign.match(stripped):
            errors.append(ValidationError(
                f"{what}: not 'key = value': {_quoted(line, mask)}",
                path=f"{rendered.spec.dest} (from {rendered.spec.template})", line=number))
    return errors


def check_ini(rendered: Rendered, mask: Callable[[str], str] | None = None) -> None:
    _check_lines(rendered, _INI_ASSIGN, ("#", ";"), True, "INI", mask)


def check_systemd(rendered: Rendered, mask: Callable[[str], str] | None = None) -> None:
    _check_lines(rendered, _SYSTEMD_ASSIGN, ("#", ";"), False, "systemd", mask)


def check_libvirt(rendered: Rendered, mask: Callable[[str], str] | None = None) -> None:
    """libvirtd.conf, qemu.conf: no sections, one `name = value` a line (what render writes)."""
    errors: list[RenderError] = []
    for number, line in enumerate(rendered.data.decode("utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not _LIBVIRT_ASSIGN.match(stripped):
            errors.append(ValidationError(
                f"libvirt: not 'name = value' (integer, quoted string or [list]): "
                f"{_quoted(line, mask)}",
                path=f"{rendered.spec.dest} (from {rendered.spec.template})", line=number))
    raise_all(errors)


CHECKS: dict[str, Callable[[Rendered, Callable[[str], str] | None], None]] = {
    "ini": check_ini, "systemd": check_systemd, "libvirt": check_libvirt}


def validate(rendered: list[Rendered], masker: Masker | None = None) -> None:
    """Check every file; raise every error found (ServiceErrors when there are several)."""
    errors: list[RenderError] = []
    for item in rendered:
        try:
            item.data.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(ValidationError("rendered file is not UTF-8", path=item.spec.template))
            continue
        if item.spec.validate != "none":
            secret = item.spec.secret
            mask = None if masker is None else \
                (lambda line, secret=secret: masker.mask_line(line, None, None, secret))
            try:
                CHECKS[item.spec.validate](item, mask)
            except RenderError as exc:
                errors.extend(each_error(exc))
    if len(errors) > MAX_ERRORS:
        rest = len(errors) - MAX_ERRORS
        errors[MAX_ERRORS:] = [ValidationError(f"{rest} more validation error(s) not shown")]
    raise_all(errors)
