"""``python -m rjcma.cli``: the ``rjcma`` command (what ``accelerate launch -m rjcma.cli`` and ``torchrun`` start)."""

import sys

from rjcma.cli import main

sys.exit(main())
