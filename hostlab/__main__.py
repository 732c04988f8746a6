"""Entry point for ``python -m hostlab``."""

import sys

from hostlab.command import main

sys.exit(main())
