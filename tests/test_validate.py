from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from renderer.errors import RenderError, ServiceErrors, ValidationError
from renderer.services import FileSpec, Root
from renderer.templates import Rendered
from renderer.validate import MAX_ERRORS, validate


def rendered(data: str, kind: str) -> Rendered:
    spec = FileSpec("t.j2", PurePosixPath("/etc/t.conf"), Root.CONTAINER, None, None, None, (),
                    False, False, kind, 1)
    return Rendered(spec, data.encode())


def test_valid_ini_and_systemd():
    validate([rendered("# c\n[DEFAULT]\na = 1\nb=2\n  continued\n; x\n[s]\nc: 3\n", "ini"),
              rendered("[Exec]\nPrivateUsers=no\n\n[Network]\nPort=1:1\n", "systemd")])


@pytest.mark.parametrize("data, kind, line, message", [
    ("a = 1\n", "ini", 1, "outside of any"),
    ("[s]\nnot an option\n", "ini", 2, "not 'key = value'"),
    ("[Exec]\nno equals sign\n", "systemd", 2, "not 'key = value'"),
    ("[Exec\nX=1\n", "systemd", 1, "outside of any"),
])
def test_invalid_files_name_line(data: str, kind: str, line: int, message: str):
    with pytest.raises(ValidationError, match=message) as info:
        validate([rendered(data, kind)])
    assert info.value.line == line and "t.j2" in info.value.path


def test_libvirt_format():
    """libvirt's conf format: integers, strings in either quotes (no escapes), lists of them."""
    validate([rendered('# c\nlog_level = 3\nx = -1\nlisten_addr = "192.0.2.1"\n'
                       "q = 'say \"hi\"'\nl = [ \"a\", 'b', 1 ]\ne = []\nt = [ 1, ]  # end\n",
                       "libvirt")])
    for bad in ("x = yes", 'x = "a', "x = [ \"a\"", 'x = "a"b"', "[section]", "x = 1 2",
                "x = 'a\"b' \"c\""):
        with pytest.raises(ValidationError, match="libvirt: not 'name = value'") as info:
            validate([rendered(f"ok = 1\n{bad}\n", "libvirt")])
        assert info.value.line == 2, bad


def test_every_bad_line_of_every_file_in_one_error():
    """One run names them all; a broken header is said once, not for every line after it."""
    with pytest.raises(ServiceErrors) as info:
        validate([rendered("[s]\nbad one\nok = 1\nbad two\n", "ini"),
                  rendered("X=1\nY=2\n", "systemd"),
                  rendered("[Exec]\nfine=1\n", "systemd")])
    assert [(type(e), e.line) for e in info.value.errors] == [
        (ValidationError, 2), (ValidationError, 4), (ValidationError, 1)]
    assert "outside of any" in info.value.errors[2].message


def test_errors_are_bounded_per_service():
    with pytest.raises(ServiceErrors) as info:
        validate([rendered("[s]\n" + "junk\n" * 500, "ini")])
    assert len(info.value.errors) == MAX_ERRORS + 1
    assert info.value.errors[-1].message == "480 more validation error(s) not shown"


def test_service_errors_gain_context_as_a_copy():
    """A ServiceErrors raised by validate (or templates) is copied by with_context like any error:
    from its errors, each of which gains the context too."""
    errors = ServiceErrors([RenderError("one", path="a", line=1), RenderError("two")])
    other = errors.with_context(service="glance", path="b")
    assert [str(e) for e in other.errors] == ["a:1: one", "b: two"]
    assert {e.service for e in other.errors} == {"glance"} and errors.errors[1].path is None
