"""`python -m recsys.cli`: the same as the `stylerec` script."""

import sys

from recsys.cli import main

sys.exit(main())
