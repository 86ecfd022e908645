"""One run at a time, in a background thread, with its progress for the page to poll."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from gis._errors import InputError

log = logging.getLogger("gis.serve")


class Runner:
    """Runs :func:`gis.pipeline.run` on a run file in a background thread, one run at a time.

    :meth:`start` returns False (and starts nothing) while a run is going; :meth:`status` is a
    plain dictionary the page polls: ``state`` (``idle`` | ``running`` | ``done`` | ``invalid``
    | ``failed``), ``step`` (the pipeline step's label), ``done`` and ``total`` steps,
    ``problems`` (text of every problem when the layers were refused), ``error``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status: dict[str, Any] = {"state": "idle", "step": "", "done": 0, "total": 0,
                                        "problems": [], "warnings": [], "error": None}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {**self._status, "problems": list(self._status["problems"]),
                    "warnings": list(self._status["warnings"])}

    @property
    def running(self) -> bool:
        return self.status()["state"] == "running"

    def start(self, runfile: Path) -> bool:
        """Start a run of ``runfile``; False when one is already going."""
        from gis import pipeline

        with self._lock:
            if self._status["state"] == "running":
                return False
            self._status = {"state": "running", "step": "starting", "done": 0,
                            "total": len(pipeline.STEPS), "problems": [], "warnings": [],
                            "error": None, "started": time.time(), "runfile": str(runfile)}
        self._thread = threading.Thread(target=self._work, args=(runfile,), daemon=True,
                                        name="gis-planner-run")
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the current run to end (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _progress(self, label: str) -> None:
        with self._lock:
            self._status["step"] = label
            if not label.startswith("reading"):  # layer reads are sub-steps of the first step
                self._status["done"] = min(self._status["done"] + 1, self._status["total"])

    def _work(self, runfile: Path) -> None:
        from gis import pipeline

        result: dict[str, Any] = {}
        try:
            ctx = pipeline.run(runfile, progress=self._progress)
            result = {"state": "done", "warnings": [str(p) for p in ctx.layers.warnings],
                      "step": "finished"}
        except InputError as exc:
            result = {"state": "invalid", "problems": [str(p) for p in exc.problems]}
        except KeyboardInterrupt:
            result = {"state": "failed", "error": "the run was stopped; the outputs are unchanged"}
        except Exception as exc:  # noqa: BLE001 - reported on the page and logged in full
            log.exception("run of %s failed", runfile)
            result = {"state": "failed", "error": f"unexpected failure: {type(exc).__name__}: "
                                                  f"{exc} (the previous outputs are unchanged)"}
        finally:
            with self._lock:
                self._status.update(result or {"state": "failed", "error": "the run stopped"})
                if self._status["state"] == "done":
                    self._status["done"] = self._status["total"]
                self._status["finished"] = time.time()
