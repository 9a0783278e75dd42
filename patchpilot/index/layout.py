"""Where an index folder keeps its versions, and how a new one is published.

An index folder built by this version of Patch Pilot looks like::

    INDEX/
      current            the name of the published version (one line, replaced atomically)
      versions/<name>/   complete indexes: manifest.json, presets.sqlite, vectors.faiss, transform.npz
      build/             the work of a build in progress (resumable; see ``index/builder.py``)
      .lock              held (flock) by the one process building or publishing

Publishing writes every file of the new version, fsyncs them and the folders, then replaces
``current`` in one ``os.replace``: a reader sees the old version or the new one, never a mix.
A reader resolves ``current`` once and holds a shared lock on its version for its lifetime
(:class:`VersionLease`); old versions are removed only when no reader holds them. A folder
with ``manifest.json`` at its top (the shipped index, indexes built before versions) is read
as it is; the first publish into it adds ``current`` and then removes the old top-level files.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from patchpilot.errors import IndexLoadError, UsageError
from patchpilot.paths import CURRENT_NAME, MANIFEST_NAME

try:  # POSIX advisory locks; elsewhere builds and readers run unlocked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

VERSIONS_NAME = "versions"
BUILD_NAME = "build"
LOCK_NAME = ".lock"
#: Inside a version: readers hold a shared lock on it, garbage collection an exclusive one.
LEASE_NAME = ".lease"
#: The files of one index version (a flat index from before versions has them at its top).
STORE_NAME = "presets.sqlite"
VECTORS_NAME = "vectors.faiss"
TRANSFORM_NAME = "transform.npz"
SKETCHES_NAME = "sketches.npz"
INDEX_FILES = (MANIFEST_NAME, STORE_NAME, VECTORS_NAME, TRANSFORM_NAME)
#: Files an index version may lack (an index built before them still opens and is searched).
OPTIONAL_INDEX_FILES = (SKETCHES_NAME,)


def fsync_path(path: Path) -> None:
    """Flush a file or a folder's entries to disk."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` (and ``root`` itself)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def write_atomically(path: Path, text: str) -> None:
    """Replace a small text file in one step, durably."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_path(path.parent)


def write_arrays_atomically(path: Path, arrays: dict[str, np.ndarray], *, compressed: bool = False,
                            before_sync: str | None = None) -> None:
    """Write arrays as one ``.npz`` in one step: written under a dot-name, fsynced, renamed,
    the folder fsynced (the rename survives a power cut), so a file under its final name is
    whole. ``before_sync`` names the kill tests'
    checkpoint between writing and syncing (a file cut short there is never seen)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)
        handle.flush()
        if before_sync is not None:
            checkpoint(before_sync)
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_path(path.parent)


class IndexFolder:
    """The folders and files of one index location (which may not exist yet)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def versions(self) -> Path:
        return self.path / VERSIONS_NAME

    @property
    def build_dir(self) -> Path:
        return self.path / BUILD_NAME

    def current_version(self) -> Path | None:
        """The published version folder, or None (``current`` missing or naming nothing)."""
        try:
            name = (self.path / CURRENT_NAME).read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not name or "/" in name or name.startswith("."):
            return None
        version = self.versions / name
        return version if (version / MANIFEST_NAME).exists() else None

    def readable(self) -> Path | None:
        """The folder a reader opens: the current version, else a legacy flat index."""
        version = self.current_version()
        if version is not None:
            return version
        return self.path if (self.path / MANIFEST_NAME).exists() else None

    def exists(self) -> bool:
        return self.readable() is not None

    def new_version_name(self) -> str:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{secrets.token_hex(3)}"

    def publish(self, finished: Path) -> Path:
        """Make ``finished`` (a complete index folder on the same file system) the current
        version. Call with the build lock held. Returns the published folder."""
        self.versions.mkdir(parents=True, exist_ok=True)
        target = self.versions / finished.name
        if finished != target:
            fsync_tree(finished)
            os.replace(finished, target)
            fsync_path(self.versions)
            fsync_path(finished.parent)
        checkpoint("publish")
        write_atomically(self.path / CURRENT_NAME, target.name + "\n")
        self._drop_legacy_files()
        self.collect_garbage()
        return target

    def _drop_legacy_files(self) -> None:
        """Once ``current`` names a version, a flat index's top-level files are unused."""
        for name in INDEX_FILES + OPTIONAL_INDEX_FILES:
            (self.path / name).unlink(missing_ok=True)

    def collect_garbage(self) -> list[str]:
        """Remove versions that are neither current nor held by a reader; returns their names."""
        current = self.current_version()
        removed = []
        if not self.versions.is_dir():
            return removed
        for version in sorted(self.versions.iterdir()):
            if current is not None and version.name == current.name or not version.is_dir():
                continue
            lease = _try_exclusive(version / LEASE_NAME)
            if lease is None:
                continue  # a reader still has it open
            try:
                shutil.rmtree(version, ignore_errors=True)
                removed.append(version.name)
            finally:
                os.close(lease)
        return removed


def resolve_index(path: Path | str) -> Path:
    """The folder a reader should open for the index at ``path``, or a one-line error."""
    folder = IndexFolder(path)
    if not folder.path.exists():
        raise IndexLoadError(f"no index at {folder.path}; build one with "
                             f"`patchpilot build-index --index {folder.path}`")
    if not folder.path.is_dir():
        raise IndexLoadError(f"{folder.path} is not an index folder")
    readable = folder.readable()
    if readable is None:
        if (folder.path / CURRENT_NAME).exists():
            raise IndexLoadError(f"{folder.path}: its current version is missing; "
                                 f"rebuild it with `patchpilot build-index --index {folder.path}`")
        return folder.path  # read_manifest names what is missing
    return readable


class VersionLease:
    """A shared lock on one index version, held while a reader uses it, so that a build's
    clean-up never removes files from under an open index."""

    def __init__(self, version: Path) -> None:
        self.version = version
        self._fd: int | None = None
        if fcntl is None or version.name == "" or version.parent.name != VERSIONS_NAME:
            return  # a legacy flat index is never garbage-collected
        try:
            self._fd = os.open(version / LEASE_NAME, os.O_RDONLY | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        except OSError:  # a read-only location: nobody can collect it either
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_version(path: Path | str) -> tuple[Path, VersionLease]:
    """Resolve the index at ``path`` to one version and lease it. Retries when a build
    swaps versions between the resolve and the lease."""
    for _ in range(5):
        version = resolve_index(path)
        lease = VersionLease(version)
        if (version / MANIFEST_NAME).exists() or version == Path(path):
            return version, lease
        lease.release()  # collected between the two steps: resolve again
    raise IndexLoadError(f"{path}: the index kept changing while it was opened; try again")


def _try_exclusive(path: Path) -> int | None:
    """An exclusive, non-blocking lock on ``path`` (created if needed), or None if held."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class BuildLock:
    """The exclusive lock of an index (or corpus) folder: one build (or describe, or seed) at a time.
    A second one fails at once with a line that says who holds it."""

    def __init__(self, folder: IndexFolder | Path) -> None:
        #: The folder locked (an index's, or a corpus's).
        self.path = folder if isinstance(folder, Path) else folder.path
        self._fd: int | None = None

    def __enter__(self) -> BuildLock:
        path = self.path / LOCK_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write to {self.path} ({exc.strerror or exc})") from None
        if fcntl is None:
            self._fd = fd
            return self
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UsageError(f"{self.path} is being built by {holder}; "
                                 "wait for it to finish (or stop it) and run this again") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def checkpoint(name: str) -> None:
    """A named point of the build where the kill tests stop the process
    (``PATCHPILOT_TEST_KILL_AT=name``), as a power cut or ``kill -9`` would."""
    if os.environ.get("PATCHPILOT_TEST_KILL_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
