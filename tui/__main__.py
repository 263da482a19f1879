"""``python -m tui``: the same as the ``sessionwatch`` command."""

import sys

from .cli import main

sys.exit(main())
