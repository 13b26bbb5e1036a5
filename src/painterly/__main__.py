"""``python -m painterly`` (and ``torchrun -m painterly train ...``)."""

import sys

from painterly.cli import main

sys.exit(main())
