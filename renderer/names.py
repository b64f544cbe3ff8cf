"""Names: what a service, machine or ``each`` item may be called, and the reserved words.

Light on purpose (only ``re``): the CLI reads SUBCOMMANDS before it imports anything else.
"""

import re

SUBCOMMANDS = ("lookup",)  # `render lookup ...`: no service may be named like a subcommand
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*\Z")
