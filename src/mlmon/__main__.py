import sys

from mlmon.cli import main

sys.exit(main())
