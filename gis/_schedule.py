"""Steps of a run side by side: one group of steps in a forked process while others run here.

A run's steps are mostly single-threaded Python, GEOS and NumPy work; on a machine with two or more
cores two independent steps finish sooner side by side than one after the other.  Threads would
share one interpreter lock, so the side steps run in a forked copy of the process
(:class:`Side`): it starts from the run's state at the fork (layers, results, the staging
folder), runs its steps, and sends back what they changed (:class:`Changes`: results, extras,
target entries, files named, warnings, timings), which is merged here once the steps running
here are done, in step order, so that the outputs, the scorecard and the warnings of
``run.json`` come out as in a serial run.

When the side process cannot deliver its changes (a step raised, a result cannot be pickled,
the process died), its steps run again here, one after the other: an error is then raised here
exactly as a serial run raises it, with the same message and exit code.

The side process is Linux-only (``os.fork``, and ``prctl(PR_SET_PDEATHSIG)`` so that it dies
with the run), and is used only from the main thread with the local engine.  Its steps run no
parallel numba kernel: a forked copy of a process whose kernels' thread pool has started must
not start it again.  ``GIS_PLANNER_SERIAL=1`` runs every step one after the other.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Set to 1 (or anything but 0 / empty) to run every step one after the other.
SERIAL_ENV = "GIS_PLANNER_SERIAL"

_MISSING = object()


def serial_asked() -> bool:
    """True when the steps must run one after the other, with no helper thread or process:
    ``GIS_PLANNER_SERIAL`` is set, or the run is not in the main thread (the workspace's
    runner)."""
    return (os.environ.get(SERIAL_ENV, "").strip() not in ("", "0")
            or threading.current_thread() is not threading.main_thread())


def side_by_side_possible(engine_kind: str) -> bool:
    """True when steps may run in a forked process: Linux, the main thread, the local engine,
    and no ``GIS_PLANNER_SERIAL``.

    A dask engine keeps its client's threads and sockets in the process: its runs stay serial.
    """
    return (not serial_asked() and sys.platform.startswith("linux") and hasattr(os, "fork")
            and engine_kind == "local")


def fork_safe_allocator() -> None:
    """Arrow's buffers from glibc's malloc from here on, unless ``ARROW_DEFAULT_MEMORY_POOL``
    names a pool.

    Arrow's default allocator, mimalloc, takes a lock as a thread that used it ends, which can
    be after ``Thread.join`` returned; a fork at that moment leaves the lock taken in the copy,
    whose first new thread then waits for ever (seen: the maps' process stuck in mimalloc's
    ``_mi_theap_init`` after two threads made the site table's columns).  glibc's malloc takes
    its locks around a fork and remakes them in the copy, so threads that use Arrow may end
    just before one.  The pools are as fast here (reading the doubled demo's buildings, the text
    of its site table's columns and its CSV: equal within the noise, ``bench/README.md``).
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


@dataclass
class Group:
    """Steps run here (``main``) while ``side`` runs in a forked process.

    ``prepare`` runs here first (what the side steps need of the main steps, e.g. the exports'
    file names and ranked sites), counted in the first main step's time; ``finish`` runs here
    once the group is done or has failed (it drops what ``prepare`` left); ``preload`` names
    modules imported in a thread while the main steps run (they then cost nothing to a later
    step, or to a process forked later); ``side_after`` runs in the forked process after the
    side steps, untimed, to make a later step's work ahead of its turn (``ctx.prepared``; the
    later step does it itself when it finds nothing there).
    """

    main: list[tuple[str, Callable]]
    side: list[tuple[str, Callable]]
    prepare: Callable[[Any], None] | None = None
    finish: Callable[[Any], None] | None = None
    preload: tuple[str, ...] = ()
    order: list[str] = field(default_factory=list)  # labels in the serial order
    side_after: Callable[[Any], None] | None = None


@dataclass
class Changes:
    """What a group of steps changed in a run's :class:`gis.pipeline.Context`."""

    results: dict[str, Any]
    results_removed: list[str]
    extras: dict[str, Any]
    extras_removed: list[str]
    entries: list[dict]
    files: list[str]
    problems: list[Any]
    inputs: list[dict]
    timings: dict[str, float]
    prepared: dict[str, Any] = field(default_factory=dict)

    def apply(self, ctx) -> None:
        """Merge into ``ctx`` as if the steps had run after those already run here."""
        for key in self.results_removed:
            ctx.results.pop(key, None)
        ctx.results.update(self.results)
        for key in self.extras_removed:
            ctx.extras.pop(key, None)
        ctx.extras.update(self.extras)
        ctx.entries.extend(self.entries)
        for name in self.files:
            ctx.files[name] = name
        if ctx.layers is not None:
            ctx.layers.problems.extend(self.problems)
            ctx.layers.inputs.extend(self.inputs)
        ctx.timings.update(self.timings)
        ctx.prepared.update(self.prepared)


class _Snapshot:
    """The parts of a context a step may change, as they were before it ran."""

    def __init__(self, ctx) -> None:
        self.results = dict(ctx.results)
        self.extras = dict(ctx.extras)
        self.entries = len(ctx.entries)
        self.files = set(ctx.files)
        self.problems = len(ctx.layers.problems) if ctx.layers is not None else 0
        self.inputs = len(ctx.layers.inputs) if ctx.layers is not None else 0
        self.timings = set(ctx.timings)
        self.prepared = dict(ctx.prepared)

    def changes(self, ctx) -> Changes:
        def changed(before: dict, now: dict) -> dict:
            return {k: v for k, v in now.items() if before.get(k, _MISSING) is not v}

        lay = ctx.layers
        return Changes(
            results=changed(self.results, ctx.results),
            results_removed=[k for k in self.results if k not in ctx.results],
            extras=changed(self.extras, ctx.extras),
            extras_removed=[k for k in self.extras if k not in ctx.extras],
            entries=ctx.entries[self.entries:], files=[k for k in ctx.files if k not in self.files],
            problems=lay.problems[self.problems:] if lay is not None else [],
            inputs=lay.inputs[self.inputs:] if lay is not None else [],
            timings={k: v for k, v in ctx.timings.items() if k not in self.timings},
            prepared=changed(self.prepared, ctx.prepared))


def run_steps(ctx, steps: Iterable[tuple[str, Callable]], *, label: bool = True) -> None:
    """Run steps here, one after the other, each timed (``ctx.timings``), with progress."""
    for name, fn in steps:
        if label and ctx.progress:
            ctx.progress(name)
        t0 = time.perf_counter()
        fn(ctx)
        ctx.timings[name] = time.perf_counter() - t0


def run_group(ctx, group: Group) -> None:
    """Run ``group.main`` here and ``group.side`` in a forked process; merge, in step order."""
    if ctx.progress:
        for name in group.order:
            ctx.progress(name)
    start = list(ctx.files)
    named: dict[str, list[str]] = {}  # the files each step named, to list them in step order
    t0 = time.perf_counter()
    if group.prepare is not None:
        group.prepare(ctx)
        named[group.main[0][0]] = [k for k in ctx.files if k not in start]
    prepared = time.perf_counter() - t0
    side = Side(ctx, group.side, after=group.side_after)
    loader = _Preload(group.preload) if group.preload else None
    try:
        for step in group.main:
            before = set(ctx.files)
            run_steps(ctx, [step], label=False)
            named.setdefault(step[0], []).extend(k for k in ctx.files if k not in before)
        ctx.timings[group.main[0][0]] += prepared
        if loader is not None:
            loader.finish()
        changes = side.join()
    except BaseException:
        side.kill()
        raise
    finally:
        if group.finish is not None:
            group.finish(ctx)
    if changes is None:  # the side steps did not finish there: run them here, as a serial run does
        before = set(ctx.files)
        run_steps(ctx, group.side, label=False)
        named[group.side[0][0]] = [k for k in ctx.files if k not in before]
    else:
        changes.apply(ctx)
        named[group.side[0][0]] = changes.files
    _in_serial_order(ctx, group, start, named)


def _in_serial_order(ctx, group: Group, start: list[str], named: dict[str, list[str]]) -> None:
    """Files and timings listed as a serial run lists them."""
    files = dict(ctx.files)
    order = start + [k for name in group.order for k in named.get(name, [])]
    ctx.files.clear()
    ctx.files.update({k: files[k] for k in dict.fromkeys(order + list(files))})
    later = [k for k in ctx.timings if k in group.order]
    for name in sorted(later, key=group.order.index):
        ctx.timings[name] = ctx.timings.pop(name)


class Forked:
    """A call run in a forked copy of this process; :meth:`result` gives what it returned.

    The copy starts from this process's state at the fork, runs the call, sends back what it
    returned (pickled, :func:`_dumps`) and exits; it dies with this process.  Fork only where
    no other thread of this process may hold a lock the call needs (an import, GDAL's): at the
    start of a run, or between steps.
    """

    def __init__(self, fn: Callable[[], Any], *, name: str = "gis-forked") -> None:
        self._chunks: list[bytes] = []
        self._reader = None
        read, write = os.pipe()
        parent = os.getpid()
        # the objects made so far out of the collector's sight: its passes in the copy would
        # otherwise write to every object's header, and copy most of the memory shared with
        # this process page by page
        gc.freeze()
        # Ctrl+C or SIGTERM held back until the fork is done: raised inside the fork's hooks
        # (logging's, concurrent.futures') an interruption is swallowed there and can leave
        # their lock taken, and the run goes on to hang at its next log call
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
        try:
            self.pid = os.fork()
        except OSError:  # no memory or processes left: the call is made here afterwards
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            gc.unfreeze()
            self.pid = 0
            os.close(read)
            os.close(write)
            return
        if self.pid == 0:  # pragma: no cover - the forked copy; it never returns
            os.close(read)
            _child(fn, write, parent, held)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        gc.unfreeze()
        os.close(write)
        # drained as it comes, so that the copy can exit (and free its memory) when it is done
        self._reader = threading.Thread(target=self._read, args=(read,), daemon=True, name=name)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as pipe:
            while chunk := pipe.read(1 << 20):
                self._chunks.append(chunk)

    def result(self) -> Any:
        """What the call returned, or :data:`NOT_DELIVERED` when it did not return there (it
        raised, its value cannot be pickled, the process died, or it was never forked): then
        make the call here."""
        if self._reader is None:
            return NOT_DELIVERED
        self._reader.join()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        try:
            kind, value = pickle.loads(b"".join(self._chunks))
        except Exception:  # noqa: BLE001 - nothing usable came back: the call is made here
            return NOT_DELIVERED
        finally:
            self._chunks.clear()
            self._reader = None
        return value if kind == "done" and status == 0 else NOT_DELIVERED

    def kill(self) -> None:
        """Stop the forked copy (a step here failed or the run was interrupted)."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None


_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}

#: What :meth:`Forked.result` gives when the call did not return in the forked copy.
NOT_DELIVERED = object()


class Side(Forked):
    """Steps run in a forked copy of this process; :meth:`join` gives their :class:`Changes`."""

    def __init__(self, ctx, steps: Sequence[tuple[str, Callable]], *,
                 after: Callable[[Any], None] | None = None) -> None:
        super().__init__(lambda: _side_steps(ctx, steps, after), name="gis-side-steps")

    def join(self) -> Changes | None:
        """The changes, or None when the steps did not finish there (then run them here)."""
        changes = self.result()
        return None if changes is NOT_DELIVERED else changes


def _side_steps(ctx, steps, after: Callable[[Any], None] | None) -> Changes:  # pragma: no cover
    """Run ``steps`` (then ``after``) on ``ctx`` in the forked copy: what they changed."""
    ctx.progress = None
    before = _Snapshot(ctx)
    run_steps(ctx, steps, label=False)
    if after is not None:
        after(ctx)
    return before.changes(ctx)


def _child(fn: Callable[[], Any], fd: int, parent: int,
           mask: set) -> None:  # pragma: no cover - forked copy
    """Call ``fn``, write ``("done", value)`` (or why not) to ``fd``; exit."""
    status = 0
    try:
        # Ctrl+C reaches the whole process group: the run here stops this copy itself
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _die_with_parent(parent)
        _own_streams()
        try:
            payload: tuple[str, Any] = ("done", fn())
        except BaseException as exc:  # noqa: BLE001 - the run here makes the call and raises
            payload = ("raised", type(exc).__name__)
        try:
            data = _dumps(payload)
        except Exception:  # noqa: BLE001 - unpicklable result: the run here makes the call
            data = pickle.dumps(("unsent", None))
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # noqa: BLE001 - whatever happens, never return into the run's stack
        status = 1
    finally:
        os._exit(status)


def _own_streams() -> None:  # pragma: no cover - runs in the forked copy
    """Standard output and error of the copy's own, on the same descriptors.

    A thread of the run (the progress bar's, in a terminal) may hold a stream's lock at the
    fork; the copy's first warning would then wait for it for ever.
    """
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        with contextlib.suppress(Exception):
            setattr(sys, name, open(fd, "w", encoding=stream.encoding, errors=stream.errors,
                                    buffering=1, closefd=False))


def _dumps(obj: Any) -> bytes:
    """``pickle.dumps``, keeping the chunks of Arrow-backed pandas columns.

    pandas joins an Arrow column's chunks when it pickles it; GDAL's Arrow writer then writes
    the column in fewer batches, and a GeoPackage comes out with the same rows but another
    SQLite change counter in its header: not the same bytes as a serial run's.
    """
    import copyreg
    import io

    from pandas.arrays import ArrowExtensionArray

    table = copyreg.dispatch_table.copy()
    todo = [ArrowExtensionArray]
    while todo:
        cls = todo.pop()
        table[cls] = _reduce_arrow
        todo += cls.__subclasses__()
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    pickler.dump(obj)
    return buffer.getvalue()


def _reduce_arrow(array) -> tuple:
    return _rebuild_arrow, (type(array), dict(array.__dict__))


def _rebuild_arrow(cls, state: dict):
    array = cls.__new__(cls)
    array.__dict__.update(state)  # as pandas' own __setstate__ does, without joining the chunks
    return array


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the forked copy
    """Ask Linux to kill this process when the run that forked it dies (even by SIGKILL)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the run died before prctl took effect
        os._exit(1)


def numba_registries() -> None:
    """Install numba's typing and target registries now.

    numba installs them at the first compiled call of a process (≈ 0.3 s of Python); a process
    forked afterwards inherits them, and its first kernel then loads from the cache in
    ≈ 0.01 s instead of ≈ 0.35 s (the ecological network's, in the forked process beside
    rooftop PV).
    """
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()


class _Preload:
    """Import modules in a thread, each while this thread sits in one long compiled call.

    An import holds the interpreter lock; made while this thread runs Python it would slow
    this thread down as much as it saves later.  So before each module the importing thread
    waits until this thread's innermost Python frame has stayed at one instruction for
    :attr:`STILL` looks, :attr:`LOOK_S` apart, each getting the lock at once — it is then
    inside a call that released the lock (a shading kernel, a GEOS or GDAL call) — or until
    :meth:`finish` is called.  With ``at_once`` it imports without waiting (beside a step that
    spends most of its time in such calls, as the load in GDAL's reads).

    A module that fails to import here is left out of ``sys.modules`` (as Python does): the
    step that imports it imports it again and fails there with the error of a run without
    this thread.
    """

    LOOK_S = 0.01
    LOCK_S = 0.002  # less than the interpreter's switch interval (5 ms)
    STILL = 3

    def __init__(self, modules: Sequence[str], *, at_once: bool = False,
                 then: Callable[[], Any] | None = None) -> None:
        self.modules = list(modules)
        self.then = then  # called after the imports, in the thread
        self.main = threading.get_ident()
        self.done = threading.Event()
        self.at_once = at_once  # import without waiting (this thread mostly in GDAL reads)
        self.thread = threading.Thread(target=self._work, daemon=True, name="gis-preload")
        self.thread.start()

    def _work(self) -> None:
        for name in self.modules:
            if not self.at_once:
                self._wait_for_a_long_call()
            # a module that fails to import fails again, with its message, where it is used
            with contextlib.suppress(Exception):
                importlib.import_module(name)
        if self.then is not None:
            with contextlib.suppress(Exception):
                self.then()

    def _wait_for_a_long_call(self) -> None:
        seen, still = None, 0
        while still < self.STILL:
            t0 = time.perf_counter()
            if self.done.wait(self.LOOK_S):
                return
            # the lock came back at once: this thread is not running Python (a Python loop
            # would also sit at one instruction, its back-edge, but hands the lock over late)
            free = time.perf_counter() - t0 < self.LOOK_S + self.LOCK_S
            frame = sys._current_frames().get(self.main)
            where = (id(frame), frame.f_lasti) if frame is not None else None
            still = still + 1 if free and where == seen else 0
            seen = where

    def finish(self) -> None:
        """Import what is left now, and wait for it."""
        self.done.set()
        self.thread.join()
