"""``python -m mlmon.cli``, as ``mlmon``."""

import sys

from mlmon.cli import main

sys.exit(main())
