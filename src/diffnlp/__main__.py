"""``python -m diffnlp train --recipe NAME`` and ``python -m diffnlp bench [NAME ...]`` (see ``diffnlp.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
