"""``python -m ctanb.jobs JOB_ID``: run one job in this process (what executors start)."""

import sys

from .runner import main

sys.exit(main())
