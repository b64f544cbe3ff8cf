"""``python -m renderer`` is the ``render`` command."""

import sys

from renderer.fastpath import main

sys.exit(main())
