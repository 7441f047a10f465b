"""`python -m tui` runs the devtui command line."""

import sys

from .cli import main

sys.exit(main())
