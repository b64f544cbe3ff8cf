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
    from renderer.names import printable  # a path in a warning cannot forge a log line

    logging.getLogger(name).warning(message, *(printable(a) if isinstance(a, str) else a
                                               for a in args))
