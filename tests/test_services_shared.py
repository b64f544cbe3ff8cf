"""load_service with a run's ``shared`` dict: an included _lib file is read once per run, and
shared only when its templates do not depend on the including service's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderer.errors import ServiceError
from renderer.services import SHARED_DIR, load_service
from renderer.services import load as load_module

SERVICE = "machine: m1\nfiles:\n  - template: a.j2\n    dest: /a\n  - include: block\n"


def tree(tmp_path: Path, names: tuple[str, ...], lib_template: bool = True) -> Path:
    templates = tmp_path / "templates"
    (templates / SHARED_DIR).mkdir(parents=True)
    (templates / SHARED_DIR / "block.yaml").write_text(
        "files:\n  - template: c.j2\n    dest: /c\n")
    if lib_template:
        (templates / SHARED_DIR / "c.j2").write_text("x\n")
    for name in names:
        (templates / name).mkdir()
        (templates / name / "service.yaml").write_text(SERVICE)
        (templates / name / "a.j2").write_text("x\n")
    return templates


def test_an_included_file_is_read_once_per_run(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    templates = tree(tmp_path, ("one", "two", "three"))
    read: list[str] = []
    real = load_module.read_regular
    monkeypatch.setattr(load_module, "read_regular",
                        lambda path, error: read.append(Path(path).name) or real(path, error))
    shared: dict = {}
    alone = [load_service(templates, n) for n in ("one", "two", "three")]
    assert read.count("block.yaml") == 3
    read.clear()
    run = [load_service(templates, n, shared) for n in ("one", "two", "three")]
    assert read.count("block.yaml") == 1 and read.count("service.yaml") == 3
    assert run == alone


def test_an_include_whose_template_is_the_services_own_is_not_shared(tmp_path: Path) -> None:
    templates = tree(tmp_path, ("one", "two"), lib_template=False)
    (templates / "one" / "c.j2").write_text("x\n")  # only "one" has the included template
    shared: dict = {}
    assert [e.template for e in load_service(templates, "one", shared).entries] == ["a.j2", "c.j2"]
    assert shared == {}
    with pytest.raises(ServiceError, match="template 'c.j2' not found"):
        load_service(templates, "two", shared)
