"""Run the generator in worker processes and stream its output to PostgreSQL ``COPY`` or to files.

No Django here: workers are started with the ``spawn`` method and import only this module and
``generator``. Each worker takes every ``workers``-th block and, per table, feeds one ``COPY ...
FROM STDIN`` on a connection of its own (a thread per table, a bounded queue between the generator
and each thread, so memory stays flat whatever the size of the load).

Primary keys are dense and deterministic: block ``b`` starts where block ``b - 1`` ended, so after
planning a block a worker publishes its row counts and waits until every earlier block has
published. Workers therefore run at most about a block apart.

All-or-nothing: every ``COPY`` runs in a transaction that is committed only after every worker has
finished without error (the parent then sets ``commit``); otherwise everything is rolled back.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import resource
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .generator import TABLES, Generator, Spec

_QUEUE_CHUNKS = 3  # chunks buffered per table and worker: bounds memory
_POLL = 0.5


class LoadError(RuntimeError):
    """A worker failed; nothing it wrote was committed."""


@dataclass(frozen=True)
class CopyTarget:
    """Where each logical table goes in PostgreSQL."""

    conn_params: dict  # keyword arguments for psycopg2.connect
    tables: dict[str, tuple[str, tuple[str, ...]]]  # logical -> (db table, column names)
    session_sql: tuple[str, ...] = ()  # run on each connection first


@dataclass(frozen=True)
class FileTarget:
    """A directory receiving ``<logical table>.<worker>.copy`` files of COPY text."""

    directory: str


@dataclass
class LoadStats:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    behaviours: dict[str, int] = field(default_factory=dict)
    worker_peak_rss_kb: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class _Aborted(Exception):
    pass


class _CopyStream(threading.Thread):
    """One ``COPY FROM STDIN`` on its own connection, fed chunk by chunk from a bounded queue."""

    def __init__(self, target: CopyTarget, table: str, abort) -> None:
        super().__init__(daemon=True)
        self.db_table, self.columns = target.tables[table]
        self.target = target
        self.abort = abort
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.error: BaseException | None = None
        self.conn = None

    def run(self) -> None:
        import psycopg2

        try:
            self.conn = psycopg2.connect(**self.target.conn_params)
            with self.conn.cursor() as cursor:
                for statement in self.target.session_sql:
                    cursor.execute(statement)
                columns = ", ".join(f'"{c}"' for c in self.columns)
                cursor.copy_expert(f'COPY "{self.db_table}" ({columns}) FROM STDIN', self)
        except BaseException as exc:  # reported by the worker's main thread
            self.error = exc
            # Unblock a producer waiting on a full queue.
            while True:
                try:
                    self.chunks.get_nowait()
                except queue.Empty:
                    break

    def read(self, size: int = -1) -> bytes:
        """psycopg2 calls this for data; any length may be returned, b"" ends the COPY."""
        chunk = self.chunks.get()
        return b"" if chunk is None else chunk

    def put(self, chunk: bytes | None) -> None:
        while True:
            if self.error is not None:
                raise LoadError(f"COPY into {self.db_table} failed: {self.error}")
            if self.abort.is_set():
                raise _Aborted
            try:
                self.chunks.put(chunk, timeout=_POLL)
                return
            except queue.Full:
                continue


class _CopySink:
    def __init__(self, target: CopyTarget, abort) -> None:
        self.target = target
        self.abort = abort
        self.streams: dict[str, _CopyStream] = {}

    def write(self, table: str, data: bytes) -> None:
        stream = self.streams.get(table)
        if stream is None:  # connections open lazily: a worker may never see some tables
            stream = self.streams[table] = _CopyStream(self.target, table, self.abort)
            stream.start()
        stream.put(data)

    def finish(self) -> None:
        for stream in self.streams.values():
            stream.put(None)
        for stream in self.streams.values():
            stream.join()
            if stream.error is not None:
                raise LoadError(f"COPY into {stream.db_table} failed: {stream.error}")

    def close(self, commit: bool) -> None:
        for stream in self.streams.values():
            if stream.is_alive():
                # Ending a COPY normally and rolling it back is the simplest safe way out.
                while True:
                    try:
                        stream.chunks.get_nowait()
                    except queue.Empty:
                        break
                stream.chunks.put(None)
            stream.join(timeout=60)
            conn = stream.conn
            if conn is None or conn.closed:
                continue
            try:
                if stream.is_alive():
                    conn.cancel()
                elif commit:
                    conn.commit()
                else:
                    conn.rollback()
            finally:
                conn.close()

    def files(self) -> list[str]:
        return []


class _FileSink:
    def __init__(self, target: FileTarget, worker: int) -> None:
        self.directory = Path(target.directory)
        self.worker = worker
        self.handles: dict[str, object] = {}

    def write(self, table: str, data: bytes) -> None:
        handle = self.handles.get(table)
        if handle is None:
            path = self.directory / f"{table}.{self.worker}.copy"
            handle = self.handles[table] = path.open("wb", buffering=1 << 20)
        handle.write(data)

    def finish(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def close(self, commit: bool) -> None:
        for handle in self.handles.values():
            handle.close()

    def files(self) -> list[str]:
        return [h.name for h in self.handles.values()]


def _worker_main(spec, target, worker, workers, shared, messages) -> None:
    """Generate blocks worker, worker + workers, ... and write them; see the module doc."""
    counts, published, cond, abort, commit = shared
    n_tables = len(TABLES)
    sink = _CopySink(target, abort) if isinstance(target, CopyTarget) else _FileSink(target, worker)
    committed = False
    try:
        generator = Generator(spec)
        acc = [spec.first_ids[t] for t in TABLES]  # first ids of block `upto`
        upto = 0
        for b in range(worker, spec.n_blocks, workers):
            block = generator.plan(b)
            block_counts = block.counts()
            with cond:
                for t, table in enumerate(TABLES):
                    counts[b * n_tables + t] = block_counts.get(table, 0)
                published[b] = 1
                cond.notify_all()
                while upto < b:
                    if published[upto]:
                        for t in range(n_tables):
                            acc[t] += counts[upto * n_tables + t]
                        upto += 1
                    elif abort.is_set():
                        raise _Aborted
                    else:
                        cond.wait(_POLL)
            chunks = generator.render(block, dict(zip(TABLES, acc, strict=True)))
            for table in TABLES:
                text = chunks.get(table)
                if text:
                    sink.write(table, text.encode())
            messages.put(("progress", worker, block_counts, block.behaviours))
        sink.finish()
        messages.put(("ready", worker, sink.files()))
        while not (commit.is_set() or abort.is_set()):
            commit.wait(_POLL)
        committed = commit.is_set() and not abort.is_set()
        sink.close(commit=committed)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        messages.put(("done", worker, rss))
    except _Aborted:
        sink.close(commit=False)
        messages.put(("aborted", worker, None))
    except BaseException:
        abort.set()
        try:
            sink.close(commit=False)
        finally:
            messages.put(("error", worker, traceback.format_exc()))


def run(
    spec: Spec,
    target: CopyTarget | FileTarget,
    *,
    workers: int,
    progress: Callable[[dict[str, int]], None] | None = None,
) -> LoadStats:
    """Generate ``spec`` with ``workers`` processes into ``target``; all or nothing.

    ``progress`` is called from this process with the running row counts after each block.
    Raises ``LoadError`` (with the worker's traceback) when any worker fails.
    """
    workers = max(1, min(workers, spec.n_blocks))
    ctx = mp.get_context("spawn")
    n_tables = len(TABLES)
    counts = ctx.Array("q", spec.n_blocks * n_tables, lock=False)
    published = ctx.Array("b", spec.n_blocks, lock=False)
    cond = ctx.Condition()
    abort, commit = ctx.Event(), ctx.Event()
    messages = ctx.Queue()
    shared = (counts, published, cond, abort, commit)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(spec, target, w, workers, shared, messages),
            name=f"seed-demo-{w}",
            daemon=True,
        )
        for w in range(workers)
    ]
    stats = LoadStats()
    ready: set[int] = set()
    finished: set[int] = set()
    errors: list[str] = []
    for proc in procs:
        proc.start()
    try:
        while len(finished) < workers:
            try:
                kind, worker, payload, *rest = messages.get(timeout=_POLL)
            except queue.Empty:
                for w, proc in enumerate(procs):
                    if w not in finished and not proc.is_alive() and proc.exitcode not in (0, None):
                        errors.append(f"worker {w} died (exit code {proc.exitcode})")
                        abort.set()
                        finished.add(w)
                continue
            if kind == "progress":
                for table, n in payload.items():
                    stats.rows[table] += n
                for behaviour, n in rest[0].items():
                    stats.behaviours[behaviour] = stats.behaviours.get(behaviour, 0) + n
                if progress is not None:
                    progress(stats.rows)
            elif kind == "ready":
                ready.add(worker)
                stats.files.extend(payload)
                if len(ready) == workers and not abort.is_set():
                    commit.set()
            elif kind == "done":
                stats.worker_peak_rss_kb.append(payload)
                finished.add(worker)
            elif kind == "aborted":
                finished.add(worker)
            elif kind == "error":
                errors.append(payload)
                abort.set()
                finished.add(worker)
    except BaseException:
        abort.set()
        raise
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    if errors:
        raise LoadError("demo data generation failed; nothing was committed.\n" + "\n".join(errors))
    if abort.is_set():
        raise LoadError("demo data generation was aborted; nothing was committed.")
    stats.files.sort()
    return stats


def default_workers() -> int:
    """Two generator processes on a two-core machine: PostgreSQL's COPY backends share the rest."""
    return max(1, min(4, os.cpu_count() or 1))
