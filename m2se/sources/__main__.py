"""``python -m m2se.sources``: see ``m2se.sources.cli``."""

import sys

from m2se.sources.cli import main

sys.exit(main())
