"""``python -m tfxattr.cli``: the ``tfxattr`` command."""
import sys

from . import main

sys.exit(main())
