"""``python -m goldstress``: see :mod:`goldstress.cli`."""

import sys

from goldstress.cli import main

sys.exit(main())
