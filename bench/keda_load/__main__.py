"""``python -m bench.keda_load``: the KEDA load benchmark (see :mod:`bench.keda_load`)."""

import sys

from bench.keda_load.cli import main

if __name__ == "__main__":
    sys.exit(main())
