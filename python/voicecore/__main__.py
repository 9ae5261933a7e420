"""``python -m voicecore``: the command line (see :mod:`voicecore.cli`)."""

from __future__ import annotations

import sys

from voicecore.cli import main

if __name__ == "__main__":
    sys.exit(main())
