"""Export, import and reindex of any number of sessions in bounded memory.

These drive the page and batch plans of :mod:`core.plans` over a sync store, one bounded
Redis call at a time, and hold one page (or batch) at once: memory does not grow with
the number of sessions. Each keeps its counts in a :class:`Tally` that the caller owns,
so an interrupted run (Ctrl-C) can still say exactly what was done; running the same
command again continues (import skips sessions already present, reindex skips sessions
already indexed).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from . import backup
from .errors import InvalidInput
from .plans import BULK_BATCH, BULK_BYTES, EXPORT_PAGE, INDEX_BATCH, BatchResult
from .policy import Policy
from .store import SessionStore

WORKERS = 2
"""Threads writing batches at once: enough to keep Redis busy while the next batch is
prepared; each call stays bounded, so other clients wait at most one call."""
Progress = Callable[[int, int | None], None]
"""Called with (sessions just handled, new estimate of the total or ``None``)."""


def _no_progress(done: int, total: int | None) -> None:
    return None


@dataclass
class Tally:
    """What a bulk command has done so far (kept up to date as it goes)."""

    written: int = 0
    """Exported, restored or newly indexed."""
    skipped: int = 0
    """Already present (import) or already indexed / not a session (reindex)."""
    duplicates: int = 0
    """Export: ids SCAN returned twice, written once."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(sid, why) of sessions left alone; only the first 20 are kept."""
    problem_count: int = 0
    scanned: int = 0

    def add_problems(self, problems: list[tuple[str, str]]) -> None:
        self.problem_count += len(problems)
        room = 20 - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])


def scan_fraction(cursor: str) -> float:
    """How far a SCAN has gone, from its cursor: Redis walks the hash table's buckets in
    reversed-bit order, so the cursor's bits reversed (as a 64-bit number) measure the part
    of the table already visited, whatever the table's size."""
    c = int(cursor)
    if c == 0:
        return 1.0
    return int(f"{c:064b}"[::-1], 2) / 2**64


class LineError(InvalidInput):
    """A line of an import file that cannot be restored; ``number`` is 1-based."""

    def __init__(self, number: int, problem: InvalidInput | str) -> None:
        whole_line = isinstance(problem, InvalidInput) and problem.field == "line"
        text = problem.problem if isinstance(problem, InvalidInput) and whole_line else str(problem)
        super().__init__("line", f"{number}: {text}")
        self.number = number
        self.problem = f"line {number}: {text}"

    def __str__(self) -> str:
        return self.problem


# --- export -----------------------------------------------------------------------------------

def export(store: SessionStore, out: TextIO, *, tally: Tally | None = None,
           progress: Progress = _no_progress, page: int = EXPORT_PAGE) -> Tally:
    """Write every session as a JSON line, each once, reading one page at a time.

    Indexed sessions come first, in session-id order from the search index (each id once
    by construction, consistent under concurrent writes: every HGETALL is one atomic
    read). Then a SCAN finds session hashes the index does not hold (another app's classic
    sessions, or all of them on a Redis without indexes); SCAN may return a key twice, so
    those ids pass through :class:`~core.backup.SeenSids` (8 bytes per id)."""
    tally = tally or Tally()
    total, indexed = store.export_totals()
    progress(0, total if indexed else None)
    if indexed:
        after: str | None = None
        while True:
            p = store.export_index_page(after, count=page)
            for sid, fields in p.records:
                out.write(backup.encode(sid, fields) + "\n")
            tally.written += len(p.records)
            tally.scanned += p.seen
            progress(len(p.records), None)
            after = p.position
            if p.done:
                break
    seen = backup.SeenSids()
    cursor = "0"
    while True:
        p = store.export_scan_page(cursor, skip_indexed=indexed, count=page)
        fresh = 0
        for sid, fields in p.records:
            if seen.add(sid):
                out.write(backup.encode(sid, fields) + "\n")
                fresh += 1
            else:
                tally.duplicates += 1
        tally.written += fresh
        cursor = p.position
        if not indexed:
            fraction = scan_fraction(cursor)
            progress(fresh, int(tally.written / fraction) if fraction > 0.02 else None)
        else:
            progress(fresh, None)
        if p.done:
            return tally


# --- import -----------------------------------------------------------------------------------

def numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Lines with their 1-based numbers; a file that is not UTF-8 is a :class:`LineError`."""
    number = 0
    it = iter(lines)
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise LineError(number + 1, "is not UTF-8 text") from None
        except (EOFError, OSError) as exc:  # a truncated .gz
            raise LineError(number + 1, f"cannot be read: {exc}") from None
        number += 1
        yield number, line


def check_lines(lines: Iterable[str], *, policy: Policy, now: float, trust: bool,
                progress: Progress = _no_progress) -> int:
    """First pass of an import: every line checked, nothing kept, nothing written.
    Returns the number of records; raises :class:`LineError` at the first bad line."""
    count = 0
    for number, line in numbered(lines):
        try:
            record = backup.decode(line, policy=policy, now=now, trust=trust)
        except InvalidInput as exc:
            raise LineError(number, exc) from None
        if record is not None:
            count += 1
            if count % 1000 == 0:
                progress(1000, None)
    progress(count % 1000, None)
    return count


class _Workers:
    """Runs batch calls on a few threads (each takes its own pooled connection), so one
    batch is being written while the next is read and encoded, and Redis is kept busy
    with bounded calls rather than waiting on round trips. Results are handled in the
    caller's thread (``drain``), so tallies and progress need no locks. At most
    ``2 * workers`` batches wait in memory."""

    def __init__(self, call: Callable[[Any], Any], on_result: Callable[[Any, Any], None],
                 workers: int) -> None:
        self.call, self.on_result = call, on_result
        self.jobs: queue.Queue[Any] = queue.Queue(maxsize=2 * workers)
        self.results: queue.Queue[tuple[Any, Any, BaseException | None]] = queue.Queue()
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"bulk-{i}")
                        for i in range(workers)]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self.results.put((job, self.call(job), None))
            except BaseException as exc:  # handed to the caller's thread
                self.results.put((job, None, exc))

    def drain(self) -> None:
        while True:
            try:
                job, result, error = self.results.get_nowait()
            except queue.Empty:
                return
            if error is not None:
                self.error = self.error or error
            else:
                self.on_result(job, result)

    def submit(self, job: Any) -> None:
        while self.error is None:
            self.drain()
            try:
                self.jobs.put(job, timeout=0.05)
                return
            except queue.Full:
                continue
        self.finish()

    def finish(self, *, cancel: bool = False) -> None:
        """Wait for the batches in flight (dropping the queued ones if ``cancel``), handle
        every result, then raise the first error a batch met."""
        if cancel:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.jobs.get_nowait()
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()
        self.drain()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """After Ctrl-C or an error: drop queued batches, let those in flight finish and
        count them (a failing progress display must not lose a count)."""
        handle = self.on_result

        def quiet(job: Any, result: Any) -> None:
            with contextlib.suppress(Exception, KeyboardInterrupt):
                handle(job, result)

        self.on_result = quiet
        with contextlib.suppress(BaseException):
            self.finish(cancel=True)


def restore(store: SessionStore, lines: Iterable[str], *, trust: bool, actor: str,
            tally: Tally | None = None, progress: Progress = _no_progress,
            batch: int = BULK_BATCH, batch_bytes: int = BULK_BYTES, workers: int | None = None,
            checked: bool = False) -> Tally:
    """Second pass of an import: write the records in bounded batches (one script call
    each, all or nothing per call); sessions already in Redis are skipped. The tally is
    exact even when interrupted: every batch sent is counted once it has been written.
    ``checked``: the caller ran :func:`check_lines` over these very bytes (the file is
    unchanged), so lines are only parsed again, not re-checked."""
    tally = tally or Tally()
    store.bulk_preflight()

    def done(job: list[backup.Record], result: BatchResult) -> None:
        tally.written += result.written
        tally.skipped += result.skipped
        tally.add_problems(result.problems)
        progress(len(job), None)

    pool = _Workers(lambda job: store.restore_batch(job, trust=trust, actor=actor), done, workers or WORKERS)
    try:
        pending: list[backup.Record] = []
        size = 0
        now = store.ctx.clock()
        for number, line in numbered(lines):
            try:
                record = (backup.decode_checked(line) if checked
                          else backup.decode(line, policy=store.policy, now=now, trust=trust))
            except (InvalidInput, ValueError, RecursionError, KeyError, TypeError) as exc:
                raise LineError(number, f"changed since it was checked ({exc})") from None
            if record is None:
                continue
            pending.append(record)
            size += len(line)
            if len(pending) >= batch or size >= batch_bytes:
                pool.submit(pending)
                pending, size = [], 0
        if pending:
            pool.submit(pending)
        pool.finish()
    except BaseException:
        pool.stop()
        raise
    return tally


# --- reindex ----------------------------------------------------------------------------------

def reindex(store: SessionStore, *, actor: str, tally: Tally | None = None, progress: Progress = _no_progress,
            scan_count: int = EXPORT_PAGE, batch: int = INDEX_BATCH, workers: int | None = None) -> Tally:
    """Index every session hash SCAN finds, a bounded batch per script call. Idempotent:
    sessions already indexed are skipped, so a rerun after Ctrl-C continues."""
    tally = tally or Tally()
    store.bulk_preflight()

    def done(job: list[str], result: BatchResult) -> None:
        tally.written += result.written
        tally.skipped += result.skipped
        tally.add_problems(result.problems)

    pool = _Workers(lambda job: store.index_batch(job, actor=actor), done, workers or WORKERS)
    try:
        cursor = "0"
        while True:
            cursor, sids = store.scan_session_ids(cursor, count=scan_count)
            tally.scanned += len(sids)
            for i in range(0, len(sids), batch):
                pool.submit(sids[i:i + batch])
            fraction = scan_fraction(cursor)
            progress(len(sids), int(tally.scanned / fraction) if fraction > 0.02 else None)
            if cursor == "0":
                break
        pool.finish()
    except BaseException:
        pool.stop()
        raise
    return tally
