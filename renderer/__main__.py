"""``python -m renderer`` is the ``render`` command."""

from renderer.fastpath import console

console()
