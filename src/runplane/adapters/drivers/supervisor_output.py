"""A process runtime's stdout and stderr, written by its supervisor: a pump
reads the two pipes the runtime writes to and appends one record per
line to a capped, rotated set of segment files (stdlib only: the supervisor
imports nothing else).

A record is `<epoch seconds, 6 decimals> <o|e> <line bytes>\\n`. A line longer
than MAX_LINE_BYTES is cut into pieces; a partial line (a prompt) is written
once the runtime has said nothing more for FLUSH_S. Segments are named after
the byte offset of their first record in the runtime's whole output
(`output.<offset>.log`): a reader's position (that offset) stays valid across
rotations, and files only appear and disappear, never move. At most `files`
segments of about `max_bytes` each are kept; the oldest is deleted first.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

SEGMENT_RULE = re.compile(r"^output\.([0-9]{1,20})\.log$")
MAX_LINE_BYTES = 16 * 1024
FLUSH_S = 0.5
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_FILES = 3
_READ_BYTES = 65536


def segment_name(offset: int) -> str:
    return f"output.{offset:015d}.log"


def segments(folder_fd: int | str) -> list[int]:
    """The offsets of the segments in a folder, oldest first."""
    try:
        names = os.listdir(folder_fd)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = (SEGMENT_RULE.match(name) for name in names)
    return sorted(int(match.group(1)) for match in found if match)


class SegmentWriter:
    """Appends records; rotates before a segment would pass `max_bytes`. Holds
    the folder open (not its path): the supervisor renames it after the start."""

    def __init__(self, folder: str, *, max_bytes: int, files: int) -> None:
        self._dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        self._max_bytes = max(max_bytes, 2 * MAX_LINE_BYTES)
        self._files = max(files, 1)
        self._offset = 0
        self._size = 0
        # The first segment is made with the first record: a runtime that says
        # nothing costs no file (a create is a supervisor's costliest call on
        # ext4, on every start).
        self._fd: int | None = None
        self._opened = False

    def _open(self, offset: int) -> int | None:
        try:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            return os.open(segment_name(offset), flags, 0o600, dir_fd=self._dir_fd)
        except OSError:
            return None  # the container was removed: its output goes nowhere

    def write(self, records: list[bytes]) -> None:
        if not self._opened:
            self._opened = True
            self._fd = self._open(0)
        batch: list[bytes] = []
        batch_size = 0
        for record in records:
            if self._size + batch_size + len(record) > self._max_bytes and (
                self._size or batch_size
            ):
                self._flush(batch)
                self._rotate(batch_size)
                batch, batch_size = [], 0
            batch.append(record)
            batch_size += len(record)
        self._flush(batch)
        self._size += batch_size

    def _flush(self, batch: list[bytes]) -> None:
        if batch and self._fd is not None:
            with contextlib.suppress(OSError):  # a full disk loses output, not the runtime
                os.write(self._fd, b"".join(batch))

    def _rotate(self, written: int) -> None:
        self._size += written
        if self._fd is not None:
            os.close(self._fd)
        self._offset += self._size
        self._size = 0
        self._fd = self._open(self._offset)
        for old in segments(self._dir_fd)[: -self._files]:
            with contextlib.suppress(OSError):
                os.unlink(segment_name(old), dir_fd=self._dir_fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        os.close(self._dir_fd)


def records_of(tag: bytes, data: bytes, now: float) -> list[bytes]:
    """The records of complete `data` lines (no trailing newline in `data`)."""
    stamp = b"%.6f %s " % (now, tag)
    out = []
    for line in data.split(b"\n"):
        for start in range(0, max(len(line), 1), MAX_LINE_BYTES):
            out.append(stamp + line[start : start + MAX_LINE_BYTES] + b"\n")
    return out


class OutputPump:
    """Reads the runtime's stdout and stderr pipes until both close (every
    process holding them ended) and writes their lines to `writer`. No thread
    of its own (one costs a supervisor as much CPU as the rest of its start):
    the supervisor's loop (`supervisor_loop`) waits on the pipes and on its
    children together, and calls `read` and `flush`."""

    def __init__(self, stdout_fd: int, stderr_fd: int, writer: SegmentWriter) -> None:
        self._tags = {stdout_fd: b"o", stderr_fd: b"e"}
        self._partial = {stdout_fd: b"", stderr_fd: b""}
        self._writer = writer
        self._open = [stdout_fd, stderr_fd]
        self._heard_at = 0.0

    @property
    def fds(self) -> list[int]:
        """The pipes not yet closed."""
        return list(self._open)

    def flush_in(self, now: float) -> float | None:
        """Seconds until a partial line is due to be written (the runtime said
        nothing more for FLUSH_S), or None when none waits."""
        if not any(self._partial.values()):
            return None
        return max(self._heard_at + FLUSH_S - now, 0.0)

    def read(self, fd: int) -> bool:
        """Take what `fd` holds; False once it is closed (end-of-file), and
        the output written out whole when it was the last one."""
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self._open.remove(fd)
            os.close(fd)
            self._emit(fd, final=True)
            if not self._open:
                self._writer.close()
            return False
        self._heard_at = time.monotonic()
        self._partial[fd] += data
        self._emit(fd)
        return True

    def flush(self, now: float) -> None:
        """Write the partial lines that are due."""
        wait = self.flush_in(now)
        if wait is not None and wait <= 0:
            self._emit_partials()

    def abandon(self) -> None:
        """Stop reading: a process that escaped the group may hold the pipes
        open; its later output is lost with the supervisor."""
        self._emit_partials()
        for fd in self._open:
            os.close(fd)
        if self._open:
            self._writer.close()
        self._open = []

    def _emit(self, fd: int, *, final: bool = False) -> None:
        buffered = self._partial[fd]
        cut = buffered.rfind(b"\n")
        if final:
            complete, rest = (buffered[:-1] if buffered.endswith(b"\n") else buffered), b""
        elif cut >= 0:
            complete, rest = buffered[:cut], buffered[cut + 1 :]
        elif len(buffered) >= MAX_LINE_BYTES:
            complete, rest = buffered[:MAX_LINE_BYTES], buffered[MAX_LINE_BYTES:]
        else:
            return
        self._partial[fd] = rest
        if buffered:
            self._writer.write(records_of(self._tags[fd], complete, time.time()))

    def _emit_partials(self) -> None:
        for fd, buffered in self._partial.items():
            if buffered:
                self._partial[fd] = b""
                self._writer.write(records_of(self._tags[fd], buffered, time.time()))


class RuntimeOutput:
    """The pipes a runtime is started with, and what becomes of them."""

    def __init__(self, folder: str, settings: dict[str, int]) -> None:
        self._writer = SegmentWriter(
            folder,
            max_bytes=int(settings.get("max_bytes", DEFAULT_MAX_BYTES)),
            files=int(settings.get("files", DEFAULT_FILES)),
        )
        self._out_read, self.stdout = os.pipe()
        self._err_read, self.stderr = os.pipe()

    def started(self) -> OutputPump:
        """The runtime holds the write ends now: close ours (the pipes close when
        it ends) and pump what it writes."""
        os.close(self.stdout)
        os.close(self.stderr)
        return OutputPump(self._out_read, self._err_read, self._writer)

    def abandon(self) -> None:
        """It did not start."""
        for fd in (self._out_read, self._err_read, self.stdout, self.stderr):
            os.close(fd)
        self._writer.close()
