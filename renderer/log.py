"""Warnings, with ``logging`` loaded only when there is something to say.

Importing logging costs a few milliseconds of a run that Puppet and cron make constantly, and most
runs warn about nothing. The first warning configures a stderr handler (``render: warning: ...``)
unless the host program (pytest, an embedding tool) already configured logging.
"""

from __future__ import annotations


def warning(name: str, message: str, *args: object) -> None:
    import logging

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("render: warning: %(message)s"))
        root.addHandler(handler)
    logging.getLogger(name).warning(message, *args)
