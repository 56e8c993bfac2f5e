"""``python3 -m feature_store``: the command-line interface (see feature_store.cli)."""

import sys

from .cli import main

sys.exit(main())
