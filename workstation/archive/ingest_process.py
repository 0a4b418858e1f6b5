"""Spooled instances indexed in a child process that runs only on otherwise idle CPU time.

Why a process: a C-MOVE is a chain. The sender loads its next image only once we have answered
the last, so any CPU our indexing holds at that moment lengthens the sender's turn, which no CPU
figure of ours shows. Measured on 2 cores (session 15): with the indexing threads in-process,
Orthanc's turnaround to us was up to three times DCMTK's ``storescp``'s in some runs, and our
answering thread waited 0.25-0.36 ms per image for a CPU. Running the indexing under Linux's
``SCHED_IDLE`` removes both (it is preempted the moment any normal task wakes), but inside the
app's process it is unsafe: a ``SCHED_IDLE`` thread preempted while it holds the GIL would stall
every thread of the app, the GUI's included, for as long as other load keeps the CPUs busy, and an
unprivileged thread cannot leave ``SCHED_IDLE`` again. In a child process it shares no GIL: low
priority can only delay indexing, and the spool keeps every acknowledged instance meanwhile.

:class:`IngestProcess` is the child, started once (``python -m
workstation.archive.ingest_process``) and shared by every receiver of the parent process;
:class:`ProcessIngester` has the interface of :class:`~workstation.archive.spool.SpoolIngester`
(``take_part``, ``submit``, ``pending``, ``close``) and is what a receiver holds. The child opens
its own :class:`~workstation.archive.archive.Archive` on the same root (SQLite's ``BEGIN
IMMEDIATE`` serialises its commits with the parent's) and runs an ordinary ``SpoolIngester``
there; results come back per batch. The empty spool files of the ack path are still made in the
parent (they are descriptors).

When the child cannot be started, or dies, or cannot open the archive, the ingester falls back to
an in-process ``SpoolIngester``: what the child had been given and had not reported is handed to
it, so nothing acknowledged is left unindexed. An instance the child had already moved out of
``spool/`` when it died is found by a reconciliation of the store, run then.

Under sustained load on every CPU by normal-priority work, a ``SCHED_IDLE`` child gets almost no
CPU time and indexing waits (the instances are safe in the spool); ``priority="normal"`` trades
that for the contention described above.

Wire format: a 4-byte little-endian length and a pickle, both ways, over the child's stdin and
stdout (the child is this program; nothing else writes to these pipes).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import IO, Any

from workstation.archive.results import AddResult
from workstation.archive.spool import LazyParts, ResultCallback, SpoolIngester
from workstation.archive.store import PartFile

log = logging.getLogger(__name__)

PRIORITIES = ("idle", "normal")
_HEADER = struct.Struct("<I")
_PIPE_SIZE = 1 << 20  # room for ~8,000 queued items before the feeder thread takes over


def _frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def _read_frame(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, or None at end of stream."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)  # noqa: S301 - our own child process, over its private pipe


class _FrameWriter:
    """Frames to a pipe without ever blocking the caller: a frame the pipe cannot take now
    waits in a backlog that a feeder thread writes as the reader makes room."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        with contextlib.suppress(OSError, AttributeError):  # Linux only; a larger pipe helps
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        os.set_blocking(fd, False)
        self._cond = threading.Condition()
        self._backlog = bytearray()
        self._broken = False
        self._closing = False
        self._feeder: threading.Thread | None = None

    def send(self, frame: bytes) -> bool:
        """Queue one frame; False when the reader is gone."""
        with self._cond:
            if self._broken or self._closing:
                return False
            if not self._backlog:
                try:
                    written = os.write(self._fd, frame)
                except BlockingIOError:
                    written = 0
                except OSError:
                    self._broken = True
                    return False
                if written == len(frame):
                    return True
                frame = frame[written:]
            self._backlog += frame
            if self._feeder is None:
                self._feeder = threading.Thread(target=self._feed, name="ingest-feeder",
                                                daemon=True)  # fmt: skip
                self._feeder.start()
            self._cond.notify()
        return True

    def close(self) -> None:
        """Close the pipe once what is queued is written (returns at once: a feeder thread
        with a backlog closes it when done, or when the reader is gone)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            feeding = self._feeder is not None
        if not feeding:
            os.close(self._fd)

    def _feed(self) -> None:
        try:
            self._write_backlog()
        finally:
            os.close(self._fd)  # the feeder exits only once closing (or the reader is gone)

    def _write_backlog(self) -> None:
        while True:
            with self._cond:
                while not self._backlog and not self._closing:
                    self._cond.wait()
                if not self._backlog or self._broken:
                    return
                chunk = bytes(self._backlog[: 1 << 16])
            try:
                select.select([], [self._fd], [])
                with self._cond:
                    written = os.write(self._fd, chunk)
                    del self._backlog[:written]
            except BlockingIOError:
                continue
            except OSError:
                with self._cond:
                    self._broken = True
                    self._backlog.clear()
                return


class IngestProcess:
    """The child process that indexes for every :class:`ProcessIngester` of this process.

    Parameters
    ----------
    priority : str
        ``"idle"`` (default): the child runs under ``SCHED_IDLE`` (elsewhere at the lowest
        ``nice``); ``"normal"``: as the parent.
    python : str
        The interpreter to run the child with.

    The child is started by :meth:`start` or the first :meth:`ingester`, and ends with
    :meth:`close` (or with this process: its stdin closes, it indexes what it has and exits).
    """

    def __init__(self, priority: str = "idle", python: str = sys.executable) -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"ingest priority must be one of {', '.join(PRIORITIES)}, "
                             f"not {priority!r}")  # fmt: skip
        self.priority = priority
        self._python = python
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: _FrameWriter | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed = ""  # why the child is not running, once it is known not to be
        self._ingesters: dict[int, ProcessIngester] = {}
        self._ids = itertools.count(1)
        self.policy = ""  # what the child reported it runs under

    # --- the parent's side --------------------------------------------------------------------
    def start(self) -> None:
        """Start the child if it is not running (returns at once; it is ready in ~0.3 s)."""
        with self._lock:
            if self._proc is not None or self._failed:
                return
            package_parent = str(Path(__file__).resolve().parents[2])
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (package_parent, env.get("PYTHONPATH", "")) if p
            )
            try:
                self._proc = subprocess.Popen(
                    [self._python, "-m", "workstation.archive.ingest_process", self.priority],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
                )  # fmt: skip
            except OSError as exc:
                self._failed = f"cannot start the ingest process: {exc}"
                log.error("%s; indexing in-process instead", self._failed)
                self._ready.set()
                return
            assert self._proc.stdin is not None
            self._writer = _FrameWriter(os.dup(self._proc.stdin.fileno()))  # the writer's own
            self._proc.stdin.close()
            self._proc.stdin = None
            self._reader = threading.Thread(target=self._read, name="ingest-results", daemon=True)
            self._reader.start()

    def wait_ready(self, timeout: float | None = None) -> str:
        """Wait until the child runs (or is known not to); what it runs under (``SCHED_IDLE``,
        ``nice 19``, ``normal``), or empty when it does not run."""
        self.start()
        self._ready.wait(timeout)
        return "" if self._failed else self.policy

    @property
    def pid(self) -> int:
        """The child's process id (0 before it started)."""
        with self._lock:
            return self._proc.pid if self._proc is not None else 0

    @property
    def running(self) -> bool:
        """True while the child runs (after :meth:`start`, before it ended)."""
        with self._lock:
            return self._proc is not None and not self._failed

    def ingester(self, archive: Any, on_result: ResultCallback | None = None) -> ProcessIngester:
        """A new ingester for ``archive`` (an open :class:`~workstation.archive.archive.Archive`)
        whose indexing runs in the child; starts the child when needed."""
        self.start()
        with self._lock:
            iid = next(self._ids)
            ingester = ProcessIngester(self, iid, archive, on_result)
            self._ingesters[iid] = ingester
            failed = self._failed
        if failed or not self._send(("open", iid, os.fspath(archive.root))):
            ingester._fall_back(failed or "the ingest process has ended")
        return ingester

    def close(self, timeout: float | None = 30.0) -> bool:
        """End the child: it indexes what it was given, then exits; ingesters still open fall
        back to in-process indexing. True when it ended within ``timeout``; otherwise it is left
        to finish on its own (never killed: one killed between moving a file into the store and
        committing the index would leave that instance unindexed until a reconciliation)."""
        with self._lock:
            proc, writer = self._proc, self._writer
            self._writer = None
        if writer is not None:
            writer.close()
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("the ingest process (pid %d) is still indexing after %s s; it ends "
                            "on its own when done", proc.pid, timeout)  # fmt: skip
                return False
        if self._reader is not None:
            self._reader.join()
        return True

    def _send(self, message: tuple[Any, ...]) -> bool:
        writer = self._writer
        return writer is not None and writer.send(_frame(message))

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stream = self._proc.stdout
        try:
            while (message := _read_frame(stream)) is not None:
                self._dispatch(message)
        except Exception:  # a garbled frame: treat as the child's end
            log.exception("reading from the ingest process failed")
        code = self._proc.wait()
        with self._lock:
            expected = self._writer is None  # close() asked for it
            self._failed = self._failed or f"the ingest process ended (exit status {code})"
            left = list(self._ingesters.values())
        if not expected:
            log.error("%s; indexing in-process from now on", self._failed)
        self._ready.set()
        for ingester in left:
            ingester._fall_back(self._failed)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            self.policy = message[1]
            self._ready.set()
            return
        if kind == "log":
            _, name, level, text = message
            logging.getLogger(name).log(level, "%s", text)
            return
        with self._lock:
            ingester = self._ingesters.get(message[1])
        if ingester is None:
            return
        if kind == "results":
            ingester._reported(message[2])
        elif kind == "closed":
            ingester._child_closed()
        elif kind == "failed":
            ingester._fall_back(message[2])

    def _forget(self, iid: int) -> None:
        with self._lock:
            self._ingesters.pop(iid, None)


class ProcessIngester:
    """A :class:`~workstation.archive.spool.SpoolIngester` whose indexing runs in the
    :class:`IngestProcess` (made by :meth:`IngestProcess.ingester`). ``on_result`` is called
    with ``(token, AddResult)`` on the parent's result thread, a batch at a time."""

    def __init__(
        self, process: IngestProcess, iid: int, archive: Any, on_result: ResultCallback | None
    ) -> None:
        self._process = process
        self._iid = iid
        self._archive = archive
        self._on_result = on_result
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._outstanding: dict[int, tuple[Hashable, str, str]] = {}  # seq -> token, path, source
        self._closed = False
        self._parts = LazyParts(archive.new_spool_part)
        self._fallback: SpoolIngester | None = None
        self._child_done = threading.Event()

    def take_part(self) -> PartFile | None:
        """As :meth:`SpoolIngester.take_part <workstation.archive.spool.SpoolIngester.take_part>`."""
        return self._parts.take()

    def submit(self, path: str, data: bytes | None, source: str, token: Hashable = None) -> None:
        """Queue a spooled file for indexing (any thread; returns at once; ``data`` is not
        sent: the child reads the file back)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the spool ingester is closed")
            fallback = self._fallback
            if fallback is None:
                seq = next(self._seq)
                self._outstanding[seq] = (token, path, source)
        if fallback is not None:
            fallback.submit(path, data, source, token)
        else:  # not sent when the child is gone: its reader thread hands the item over
            self._process._send(("item", self._iid, seq, path, source))

    @property
    def pending(self) -> int:
        """Instances submitted and not yet indexed."""
        with self._lock:
            fallback = self._fallback
            count = len(self._outstanding)
        return count + (fallback.pending if fallback is not None else 0)

    def close(self, timeout: float | None = None) -> bool:
        """Index everything submitted, then end; True when it drained in time."""
        with self._lock:
            already, self._closed = self._closed, True
        self._parts.close()
        if not already:  # not sent when the child is gone: then the fallback drains
            self._process._send(("close", self._iid))
        if not self._child_done.wait(timeout):
            return False
        with self._lock:
            fallback = self._fallback
        if fallback is None:
            self._process._forget(self._iid)
            return True
        return fallback.close(timeout)

    # --- called by the IngestProcess's reader thread -------------------------------------------
    def _reported(self, pairs: list[tuple[int, AddResult]]) -> None:
        with self._lock:
            tokens = [self._outstanding.pop(seq, (None, "", ""))[0] for seq, _ in pairs]
        if self._on_result is None:
            return
        for token, (_, result) in zip(tokens, pairs, strict=True):
            try:
                self._on_result(token, result)
            except Exception:  # a reporting bug must not stop the indexing
                log.exception("ingest result callback failed for %s", result.source)

    def _child_closed(self) -> None:
        with self._lock:
            asked = self._closed
        if asked:  # else the child is ending (IngestProcess.close): its end hands over to us
            self._child_done.set()

    def _fall_back(self, reason: str) -> None:
        """Index in-process from now on, starting with what the child had not reported."""
        with self._lock:
            if self._fallback is not None:
                return
            self._fallback = SpoolIngester(self._archive, self._on_result)
            left, self._outstanding = self._outstanding, {}
            closed = self._closed
        self._process._forget(self._iid)
        if left:
            log.error("%s: indexing the %d instances it had not reported in-process", reason,
                      len(left))  # fmt: skip
        else:
            log.info("%s: %s indexed in-process", reason, self._archive.root)
        gone = []
        for token, path, source in left.values():
            if os.path.exists(path):
                self._fallback.submit(path, None, source, token)
            else:
                gone.append(path)
        if gone:  # moved into the store by the child: committed, or placed and never indexed
            log.error("%d instances had left spool/ when the ingest process ended; "
                      "reconciling %s", len(gone), self._archive.root)  # fmt: skip
            try:
                self._archive.reconcile()
            except Exception:
                log.exception("reconciling %s failed", self._archive.root)
        self._child_done.set()
        if closed:
            self._fallback.close()


def spool_ingester(
    archive: Any, on_result: ResultCallback | None = None, process: IngestProcess | None = None
) -> SpoolIngester | ProcessIngester:
    """An ingester for ``archive``: indexing in ``process`` when one is given, else on a thread
    of this process."""
    if process is None:
        return SpoolIngester(archive, on_result)
    return process.ingester(archive, on_result)


# --- the child's side ---------------------------------------------------------------------------
def _apply_priority(priority: str) -> str:
    """Lower this process's CPU priority (before any thread starts); the policy in words."""
    if priority != "idle":
        return "normal"
    sched_idle = getattr(os, "SCHED_IDLE", None)
    if sched_idle is not None:
        try:
            os.sched_setscheduler(0, sched_idle, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError:
            pass
    try:
        os.nice(19)
        return "nice 19"
    except OSError:
        return "normal"


class _PipeLog(logging.Handler):
    """The child's log records, sent to the parent's logging."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self._send(("log", record.name, record.levelno, text))
        except Exception:
            self.handleError(record)


def _child_main(priority: str) -> int:
    policy = _apply_priority(priority)
    from workstation.archive.archive import Archive

    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the frame pipe
    out_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        frame = _frame(message)
        with out_lock:
            try:
                out.write(frame)
                out.flush()
            except (BrokenPipeError, ValueError):
                pass  # the parent is gone; the spool keeps everything

    root_logger = logging.getLogger()
    root_logger.addHandler(_PipeLog(send))
    root_logger.setLevel(logging.WARNING)  # its INFO is "the archive is open elsewhere"
    send(("ready", policy))
    open_ones: dict[int, tuple[Any, SpoolIngester]] = {}

    def close_one(entry: tuple[Any, SpoolIngester], iid: int) -> None:
        archive, ingester = entry
        ingester.close()
        archive.close()
        send(("closed", iid))

    closers: list[threading.Thread] = []
    stdin = sys.stdin.buffer
    while (message := _read_frame(stdin)) is not None:
        kind, iid = message[0], message[1]
        if kind == "item":
            if iid in open_ones:  # else its open failed: the parent indexes it
                open_ones[iid][1].submit(message[3], None, message[4], message[2])
        elif kind == "open":
            try:
                archive = Archive(message[2], reconcile=False)
            except Exception as exc:
                send(("failed", iid, f"the ingest process cannot open {message[2]}: {exc}"))
                continue

            def report(pairs: list[tuple[Hashable, AddResult]], iid: int = iid) -> None:
                send(("results", iid, pairs))

            open_ones[iid] = (archive, SpoolIngester(archive, on_batch=report))
        elif kind == "close" and iid in open_ones:
            closer = threading.Thread(target=close_one, args=(open_ones.pop(iid), iid),
                                      name=f"close-{iid}")  # fmt: skip
            closer.start()
            closers.append(closer)
    for iid in list(open_ones):  # the parent is gone or done: index what was given, then end
        close_one(open_ones.pop(iid), iid)
    for closer in closers:
        closer.join()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1] if len(sys.argv) > 1 else "idle"))
