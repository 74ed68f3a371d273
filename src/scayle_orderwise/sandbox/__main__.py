"""``python -m scayle_orderwise.sandbox serve --port N``: serve both fakes on loopback."""

from __future__ import annotations

import sys

from .serve import main

if __name__ == "__main__":
    sys.exit(main())
