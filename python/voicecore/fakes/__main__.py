"""``python -m voicecore.fakes``: the same as ``python -m voicecore fakes`` (:mod:`.command`)."""

from __future__ import annotations

from voicecore.fakes.command import main

if __name__ == "__main__":
    raise SystemExit(main())
