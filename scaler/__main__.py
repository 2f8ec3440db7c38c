"""``python -m scaler`` is the ``keda-queue-scaler`` command."""

import sys

from scaler.cli import main

sys.exit(main())
