"""``python -m tfxattr``: the ``tfxattr`` command."""
import sys

from .cli import main

sys.exit(main())
