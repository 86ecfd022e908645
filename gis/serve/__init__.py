"""``gis-planner serve``: a planner's workspace in the browser, for one project folder.

Pick or upload layers, map their columns and values, choose targets and the PV preset, validate,
run (with progress), browse the outputs, download site lists and compare with the previous run.
The workspace writes the run file it uses (``run.toml``), so ``gis-planner run run.toml``
reproduces its outputs.  It answers on the loopback address by default and reads and writes only
inside the project folder.
"""

from __future__ import annotations

from pathlib import Path

from gis.serve.app import DEFAULT_MAX_UPLOAD_MB, create_app

__all__ = ["create_app", "serve", "DEFAULT_MAX_UPLOAD_MB"]


def serve(project_dir: str | Path = ".", *, host: str = "127.0.0.1", port: int = 8765,
          max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, threads: int = 4) -> None:
    """Serve the workspace until interrupted (waitress, a production WSGI server).

    Parameters
    ----------
    project_dir : str or Path
        The project folder.
    host : str
        Address to listen on; the loopback address by default.  Any other address lets others
        on the network read the project and start runs.
    port : int
        TCP port.
    max_upload_mb : float
        Largest upload accepted [MB].
    threads : int
        Request threads (a run itself goes in its own thread).
    """
    import waitress

    app = create_app(project_dir, max_upload_mb=max_upload_mb,
                     loopback_only=host in ("127.0.0.1", "localhost", "::1"))
    waitress.serve(app, host=host, port=port, threads=threads,
                   max_request_body_size=int(max_upload_mb * 1024 * 1024) + 1024 * 1024)
