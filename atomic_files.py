"""Files written whole or not at all, and the leftovers of writers that were killed.

Every file the project writes (checkpoints, config.json, test results, demo episodes) is first written to a
hidden temporary file beside its target, then renamed onto it. The temporary name ends in its writer's host
and process id, `.best.pt.ab12cd.node7-4242.tmp`: a writer killed with -9 cannot remove its own, and the next
run or recording in that folder removes exactly those whose writer is gone. A file that another live process
is still writing (a second recorder into the same dataset, `test` beside a training) is never touched; nor is
one from another host sharing the folder, whose processes cannot be seen from here. Writes that must not be cut
short (a checkpoint, a recorded episode) hold Ctrl-C and SIGTERM back until they are done.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import tempfile
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Iterator

from errors import UserError

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # held back while a file that must survive is written
TEMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]*)-(?P<pid>\d+)\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())  # no dots: the writer is the last dotted part


def create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside `target`, named after it and its writer: (descriptor, path)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{_host()}-{os.getpid()}.tmp", dir=target.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; runs and demos are ordinary files others may read
    return fd, Path(name)


@contextmanager
def signals_held_back() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive during the block take effect when it ends. Python runs signal handlers
    in the main thread whichever thread the kernel hands the signal to (pygame's SDL threads, say), so a
    signal mask, which covers one thread, is not enough: a handler that only notes the signal is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: this one is never interrupted
        return
    arrived: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: arrived.append(signum)) for signum in HELD_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):  # each once, in order: the first usually raises KeyboardInterrupt
            signal.raise_signal(signum)


@contextmanager
def replacing(target: Path, mode: str = "w") -> Iterator[IO]:
    """A file whose contents replace `target` when the block ends without error, flushed to disk first, so a
    crash leaves the old target or the new one, never half of one. On any failure the temporary file is
    removed, and an OSError (a full or read-only disk) becomes a UserError naming `target`."""
    tmp = None
    try:
        fd, tmp = create_temp(target)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise UserError(f"{target}: cannot write ({error.strerror or error})") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with replacing(path) as f:
        f.write(text)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    return True


def remove_stale_temp_files(folder: Path) -> None:
    """Remove the temporary files in `folder` left by writers of this host that are no longer running.
    Best effort: a file that cannot be removed stays (it is hidden, and nothing reads it)."""
    if not folder.is_dir():
        return
    host = _host()
    for file in folder.glob(".*.tmp"):
        match = TEMP_NAME.match(file.name)
        if match and match["host"] == host and not _process_alive(int(match["pid"])):
            with suppress(OSError):
                file.unlink()


def check_writable(folder: Path, min_free_bytes: int) -> None:
    """Make `folder` if needed and check that a file can be written there and its disk has `min_free_bytes`
    free; a UserError otherwise. Called before long work, so that a read-only or full disk fails in seconds,
    not after a training epoch, an evaluation or a hand-driven lap."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = create_temp(folder / "write-test")
        os.close(fd)
        probe.unlink()
        disk = os.statvfs(folder)
    except OSError as error:
        raise UserError(f"{folder}: cannot write here ({error.strerror or error})") from None
    free = disk.f_bavail * disk.f_frsize
    if free < min_free_bytes:
        raise UserError(f"{folder}: only {free / 2**20:.1f} MiB free on its disk, at least "
                        f"{min_free_bytes / 2**20:.0f} MiB needed; free some space or write elsewhere")
