"""``python -m painterly`` (and ``torchrun -m painterly train ...``)."""

import sys

try:
    from painterly.cli import main
except KeyboardInterrupt:  # Ctrl-C while the package itself is still importing
    print("painterly: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
