"""``python -m renderer`` is the ``render`` command."""

import sys

from renderer.cli import main

sys.exit(main())
