"""One call limit for all of ``serve --workers N``: :class:`~voicecore.sansio.admission.Admission` in a file.

With several worker processes on one port, a call's webhook and its Media Stream may reach
different workers, and any worker may take the next call; so the calls in progress and the
reservations live in one small file that every worker locks (``flock``), reads, changes through
the pure :class:`~voicecore.sansio.admission.Admission` and writes back. Each entry names the
worker process holding it, and the slots of a worker that is no longer running are given back
on the next access, so a crashed worker cannot fill the server forever. The parent process
creates the file (:func:`create`) before starting the workers and removes it when they are done.

Draining stays per worker: a worker told to stop refuses new calls while the others, told the
same a moment later, finish theirs.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from voicecore.errors import ConfigError
from voicecore.sansio.admission import Admission

__all__ = ["SharedAdmission", "create", "shared_memory"]


def shared_memory() -> str | None:
    """Where files shared by the workers go: ``/dev/shm`` where there is one, else the temp folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def create() -> Path:
    """A new, empty state file (in shared memory where there is one), for :class:`SharedAdmission`."""
    handle, name = tempfile.mkstemp(prefix="voicecore-calls-", suffix=".json", dir=shared_memory())
    os.close(handle)
    return Path(name)


class SharedAdmission:
    """The interface of :class:`~voicecore.sansio.admission.Admission`, shared through ``path``.

    Args:
        path: The state file (:func:`create`), the same for every worker.
        max_calls: Calls allowed at once across all workers.
        reservation_s: How long a webhook's reservation waits for its stream.
    """

    def __init__(self, path: Path, max_calls: int, *, reservation_s: float = 15.0) -> None:
        if max_calls < 1:
            raise ConfigError(f"max_calls must be at least 1, not {max_calls}")
        self.path = path
        self.max_calls = max_calls
        self.reservation_s = reservation_s
        self.draining = False
        self._owner = os.getpid()

    @property
    def active(self) -> int:
        """Calls in progress in all workers."""
        with self._locked() as admission:
            return admission.active

    def load(self, now: float) -> int:
        """Calls in progress plus unexpired reservations, in all workers."""
        with self._locked() as admission:
            return admission.load(now)

    def reserve(self, call_id: str, now: float) -> bool:
        """Hold a slot for ``call_id``'s stream; False when full or this worker is draining."""
        if self.draining:
            return False
        with self._locked() as admission:
            return admission.reserve(call_id, now, self._owner)

    def admit(self, call_id: str, now: float) -> bool:
        """Start ``call_id`` (with its reservation, made by any worker, or a free slot)."""
        if self.draining:
            return False
        with self._locked() as admission:
            return admission.admit(call_id, now, self._owner)

    def release(self, call_id: str) -> None:
        """``call_id`` ended."""
        with self._locked() as admission:
            admission.release(call_id)

    def drain(self) -> None:
        """Refuse everything new in this worker from now on."""
        self.draining = True

    @contextmanager
    def _locked(self) -> Iterator[Admission]:
        """The shared state, under the file's lock; written back unless the block raised."""
        with open(self.path, "r+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)  # held for microseconds; released when closed
            data = file.read()
            state = msgspec.json.decode(data) if data else {}
            admission = Admission.restore(self.max_calls, state, reservation_s=self.reservation_s)
            for owner in admission.owners() - {self._owner}:
                if not _running(owner):
                    admission.release_owner(owner)
            yield admission
            file.seek(0)
            file.truncate()
            file.write(msgspec.json.encode(admission.state()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True
