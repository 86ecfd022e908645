"""A folder of computed arrays kept between runs, each file named by a digest of its inputs.

Used by :func:`gis.horizon.roof_horizons` for the horizons of each tile: a rerun after a change
to targets, finance, land use or a few buildings loads the tiles whose inputs are unchanged
instead of marching their rays again.

* Folder: ``$GIS_PLANNER_CACHE_DIR/<name>``, else ``$XDG_CACHE_HOME/gis-planner/<name>``, else
  ``~/.cache/gis-planner/<name>``.  ``GIS_PLANNER_NO_CACHE=1`` turns every cache off.
* A file holds a header (magic, its key, the payload's length and blake2b digest) and the
  arrays' bytes.  It is written to a temporary name and renamed (:func:`os.replace`), so a
  reader never sees half a file, even with several runs side by side; a file that is short,
  foreign or damaged is ignored (and computed again), never an error.
* Size cap (:data:`MAX_BYTES`, 2 GB): past it the files used longest ago are removed (a file
  read is touched, so the cap keeps what reruns use).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Environment variable naming the cache root (the folder holding ``horizons/``).
ENV_DIR = "GIS_PLANNER_CACHE_DIR"
#: Environment variable that turns every cache off when set to anything but "", "0" or "false".
ENV_OFF = "GIS_PLANNER_NO_CACHE"
#: Size cap of one cache folder [bytes].
MAX_BYTES = 2 * 1024 ** 3
_MAGIC = b"GISPLANNER-CACHE1\n"
_HEADER = struct.Struct("<16sQ16s")  # key digest, payload length, payload digest
#: Temporary files older than this [s] were left by a run that died: removed when trimming.
_STALE_TMP_S = 3600.0


def disabled_by_env() -> bool:
    """True when ``GIS_PLANNER_NO_CACHE`` turns caching off."""
    return os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")


def cache_root() -> Path:
    """The package's cache root: ``$GIS_PLANNER_CACHE_DIR``, ``$XDG_CACHE_HOME/gis-planner`` or
    ``~/.cache/gis-planner``."""
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gis-planner"


class Digest:
    """A blake2b digest fed with arrays (their bytes, dtype and shape) and plain values."""

    def __init__(self, *values: Any) -> None:
        self._h = hashlib.blake2b(digest_size=16)
        self.update(*values)

    def update(self, *values: Any) -> Digest:
        for v in values:
            if isinstance(v, np.ndarray):
                a = np.ascontiguousarray(v)
                self._h.update(f"{a.dtype.str}{a.shape}".encode())
                self._h.update(memoryview(a).cast("B"))
            elif isinstance(v, bytes | bytearray | memoryview):
                self._h.update(b"bytes%d:" % len(v))
                self._h.update(v)
            else:
                self._h.update(repr(v).encode() + b"\x00")
        return self

    def copy(self) -> Digest:
        out = Digest.__new__(Digest)
        out._h = self._h.copy()
        return out

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class ArrayCache:
    """Arrays stored under a key in a folder (see the module notes).

    Parameters
    ----------
    folder : path
        Where the files live (made when first written).
    max_bytes : int
        Size cap of the folder [bytes].
    """

    def __init__(self, folder: str | os.PathLike, *, max_bytes: int = MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.ignored = 0  # files found but unreadable or not matching
        self.not_written = 0

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.bin"

    def get(self, key: str, layout: list[tuple[tuple[int, ...], Any]]
            ) -> list[np.ndarray] | None:
        """The arrays stored under ``key`` with the shapes and dtypes of ``layout``, or None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        arrays = _unpack(data, key, layout)
        if arrays is None:
            self.ignored += 1
            return None
        try:
            os.utime(path)  # used now: trimmed last
        except OSError:
            pass
        return arrays

    def put(self, key: str, arrays: list[np.ndarray]) -> bool:
        """Store ``arrays`` under ``key`` (whole or not at all); False when it could not."""
        payload = b"".join(memoryview(np.ascontiguousarray(a)).cast("B") for a in arrays)
        head = _MAGIC + _HEADER.pack(bytes.fromhex(key), len(payload),
                                     hashlib.blake2b(payload, digest_size=16).digest())
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
            with os.fdopen(fd, "wb") as f:
                f.write(head)
                f.write(payload)
            os.replace(tmp, self._path(key))
            return True
        except OSError:  # a full or read-only disk: the run goes on, the tile is not kept
            self.not_written += 1
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False

    def trim(self) -> int:
        """Remove the files used longest ago until the folder is under its cap; bytes kept."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return 0
        now = time.time()
        files = []
        for e in entries:  # files of the cache folder (a few thousand at most), not features
            try:
                st = e.stat()
            except OSError:
                continue
            if e.name.endswith(".tmp"):
                if now - st.st_mtime > _STALE_TMP_S:
                    _remove(e.path)
                continue
            if e.name.endswith(".bin"):
                files.append((st.st_mtime, st.st_size, e.path))
        total = sum(f[1] for f in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if _remove(path):
                total -= size
        return total


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def _unpack(data: bytes, key: str, layout: list[tuple[tuple[int, ...], Any]]
            ) -> list[np.ndarray] | None:
    """The arrays of a cache file, or None when it is not a whole file for ``key``."""
    start = len(_MAGIC) + _HEADER.size
    if len(data) < start or not data.startswith(_MAGIC):
        return None
    stored_key, length, digest = _HEADER.unpack_from(data, len(_MAGIC))
    sizes = [int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in layout]
    if (stored_key.hex() != key or length != sum(sizes) or len(data) != start + length
            or hashlib.blake2b(memoryview(data)[start:], digest_size=16).digest() != digest):
        return None
    out, at = [], start
    for (shape, dtype), size in zip(layout, sizes, strict=True):
        out.append(np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize,
                                 offset=at).reshape(shape).copy())
        at += size
    return out


# process-wide tile counts, so that a run can say what its steps reused (run.json)
_TALLY = {"tiles_reused": 0, "tiles_computed": 0, "files_ignored": 0, "files_not_written": 0}
_TALLY_LOCK = threading.Lock()


def count(**amounts: int) -> None:
    """Add to the process-wide counts (:func:`counts`)."""
    with _TALLY_LOCK:
        for k, v in amounts.items():
            _TALLY[k] = _TALLY.get(k, 0) + int(v)


def counts() -> dict[str, int]:
    """Tiles reused and computed (and cache files ignored or not written) in this process so
    far; the difference of two calls is what ran in between."""
    with _TALLY_LOCK:
        return dict(_TALLY)
