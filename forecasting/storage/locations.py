"""Where the job keeps its files: a local folder, or an object store (`s3://`, `gs://`, `az://`, `file://`)
through fsspec and universal-pathlib.

A local root is a plain `pathlib.Path` (nothing changes for it); a remote one is a `UPath`, which has
the same methods. An object store has no rename, so the few writes that must be all-or-nothing go
through `put_file`: the object is written whole on the local disk first, then sent as one object
(a single PUT, or a multipart upload that only appears once complete), so readers see the old
object or the new one, never half. Credentials come from the environment or the provider's usual
chain (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*); `storage.options` may hold other
filesystem options (an endpoint, a region) but never a key or a secret.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import importlib.util
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa

from forecasting.errors import ConfigError, RunError
from forecasting.runtime.faults import checkpoint

# URL scheme -> (the extra that installs its filesystem, the package)
REMOTE_SCHEMES = {
    "s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs"),
    "az": ("azure", "adlfs"), "abfs": ("azure", "adlfs"), "abfss": ("azure", "adlfs"),
}
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas", "connection_string")

_options: dict[str, dict[str, Any]] = {}  # per scheme: the options of the configured root (for artifact URLs)
_downloads: dict[tuple[str, str | None], Path] = {}


def is_url(text: str) -> bool:
    """Whether `text` starts with a `scheme://`."""
    return bool(URL_SCHEME.match(str(text)))


def url_problem(text: str) -> str | None:
    """What is wrong with a storage URL for this job (None: nothing)."""
    scheme = URL_SCHEME.match(text).group(1).lower()  # type: ignore[union-attr]
    parts = urlsplit(text)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            return f"{text!r} is not a local file URL (file:///absolute/path)"
        return None
    if scheme not in REMOTE_SCHEMES:
        return f"{scheme}:// is not supported; use a local folder, file://, s3://, gs:// or az://"
    if "@" in parts.netloc or ":" in parts.netloc:
        return (
            "the URL holds credentials or a port; keep credentials in the environment "
            "(docs/object-storage.md) and give scheme://bucket/prefix"
        )
    if not parts.netloc:
        return f"{text!r} names no bucket or container ({scheme}://bucket/prefix)"
    return None


def check_url(text: str, where: str) -> None:
    """Raise `ConfigError` (one line naming `where`) for a storage URL this job cannot use."""
    problem = url_problem(text)
    if problem:
        raise ConfigError(f"{where}: {problem}")


def secret_option_keys(options: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The keys of `options` (nested too) whose names look like credentials."""
    found = []
    for name, value in options.items():
        if any(word in str(name).lower() for word in SECRET_WORDS):
            found.append(prefix + str(name))
        if isinstance(value, Mapping):
            found += secret_option_keys(value, f"{prefix}{name}.")
    return found


def remember_options(root: str | None, options: Mapping[str, Any]) -> None:
    """Keep the configured filesystem options for later URLs of `root`'s scheme (no I/O)."""
    match = URL_SCHEME.match(root or "")
    if match and match.group(1).lower() in REMOTE_SCHEMES:
        _options[match.group(1).lower()] = dict(options)


def location(root: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> Path:
    """A local `Path` for a folder or `file://` URL; a `UPath` for an object-store URL (its `options`
    are remembered for later URLs of the same scheme, such as an artifact path from the registry).
    A path object passes through unchanged."""
    if isinstance(root, Path):
        return root
    text = os.fspath(root)
    if not is_url(text):
        return Path(text)
    scheme = URL_SCHEME.match(text).group(1).lower()  # type: ignore[union-attr]
    check_url(text, "storage")
    if scheme == "file":
        return Path(urlsplit(text).path)
    if options is not None:
        _options[scheme] = dict(options)
    extra, package = REMOTE_SCHEMES[scheme]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"storage: {scheme}:// needs the {package} package: pip install 'rnn-forecasting[{extra}]'")
    from upath import UPath  # lazy: upath

    return UPath(text, use_listings_cache=False, **_options.get(scheme, {}))


def is_remote(path: Any) -> bool:
    """Whether `path` is on an object store (not the local disk)."""
    from upath.implementations.local import LocalPath  # lazy: upath

    return hasattr(path, "fs") and hasattr(path, "protocol") and not isinstance(path, LocalPath) and path.protocol not in ("", "file", "local")


def make_dirs(path: Path) -> None:
    """Create a local folder (and its parents); nothing on an object store, where folders are prefixes."""
    if not is_remote(path):
        path.mkdir(parents=True, exist_ok=True)


def remove_tree(path: Path) -> None:
    """Remove a folder and everything under it (no error when it is not there)."""
    if is_remote(path):
        try:
            path.fs.rm(path.path, recursive=True)
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(path, ignore_errors=True)


def put_file(local: Path, target: Path) -> None:
    """Place the finished local file `local` at `target` whole: a rename on the local disk, one object
    upload on an object store (`local` is removed either way)."""
    if is_remote(target):
        target.fs.put_file(str(local), target.path)
        Path(local).unlink(missing_ok=True)
    else:
        os.replace(local, target)


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk (or the user's quota) is full; pyarrow's write errors included."""
    return isinstance(error, OSError) and (error.errno in DISK_FULL or "[errno 28]" in str(error).lower())


@contextlib.contextmanager
def failing_clearly_when_full(path: Path) -> Iterator[None]:
    """Turn a full disk while writing `path` into one RunError naming it (and not retried as transient)."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            raise RunError(
                f"{path}: the disk is full (no space left on device); what was stored before is kept: free space and run again"
            ) from error
        raise


def arrow_source(path: Path) -> dict[str, Any]:
    """Keyword arguments that point `pyarrow.dataset.dataset` at `path` on its filesystem."""
    return {"source": path.path, "filesystem": path.fs} if is_remote(path) else {"source": str(path)}


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as a frame, wherever it is."""
    if is_remote(path):
        with path.open("rb") as handle:
            frame = pd.read_parquet(handle, columns=columns)
    else:
        frame = pd.read_parquet(path, columns=columns)
    pa.default_memory_pool().release_unused()  # the Arrow buffers the frame was copied from (1.8 M forecast rows: about 200 MiB)
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as one Parquet file (one object upload on an object store)."""
    with failing_clearly_when_full(path):
        if not is_remote(path):
            frame.to_parquet(path, index=False)
            return
        with tempfile.TemporaryDirectory(prefix="forecasting-put-") as scratch:
            local = Path(scratch) / path.name
            frame.to_parquet(local, index=False)
            put_file(local, path)


def upload_folder(local: Path, target: Path, last: str | None = None, kill_point: str | None = None) -> None:
    """Upload every file of the local folder `local` under `target`, the file named `last` after all
    the others (a reader that finds it finds the rest); each upload is checked by its size.
    `kill_point`: the fault-injection point reached after the first object (see `forecasting.runtime.faults`)."""
    files = sorted(p for p in Path(local).rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == last)
    for number, file in enumerate(files):
        if number == 1 and kill_point:
            checkpoint(kill_point)
        destination = target.joinpath(*file.relative_to(local).parts)
        destination.fs.put_file(str(file), destination.path)
        if destination.fs.size(destination.path) != file.stat().st_size:
            raise RunError(f"{destination}: the uploaded object's size differs from {file}; the store did not keep it whole")


def download_folder(source: Path, local: Path) -> None:
    """Copy every object under `source` into the local folder `local` (created)."""
    local.mkdir(parents=True, exist_ok=True)
    prefix = source.path.rstrip("/") + "/"
    if not source.fs.exists(source.path):
        return
    for name in source.fs.find(source.path):
        relative = name[len(prefix):] if name.startswith(prefix) else Path(name).name
        destination = local / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.fs.get_file(name, str(destination))


def local_copy(folder: str | os.PathLike[str], key: str | None = None) -> Path:
    """A local folder with the content of `folder`: itself when local, else a download kept for the
    life of the process (`key`, such as a checksum, tells versions apart)."""
    path = location(folder)
    if not is_remote(path):
        return path
    cached = _downloads.get((str(path), key))
    if cached is not None and cached.is_dir():
        return cached
    scratch = Path(tempfile.mkdtemp(prefix="forecasting-artifact-"))
    atexit.register(shutil.rmtree, scratch, True)
    download_folder(path, scratch)
    _downloads[(str(path), key)] = scratch
    return scratch


def check_reachable(root: Path, where: str = "storage.root") -> None:
    """Raise `RunError` (one line) unless this process can write, read and remove an object under the
    remote `root` (nothing is done for a local root)."""
    if not is_remote(root):
        return
    probe = root / f".probe-{uuid.uuid4().hex}"
    try:
        probe.fs.pipe_file(probe.path, b"ok")
        probe.fs.cat_file(probe.path)
        probe.fs.rm_file(probe.path)
    except Exception as error:  # noqa: BLE001 - any failure to reach the store is one line, before any work
        detail = " ".join(str(error).split()) or type(error).__name__
        raise RunError(f"{where}: cannot reach {root} ({type(error).__name__}: {detail[:200]}); check the URL, the network and the credentials in the environment") from None


def share_link(path: Path, seconds: int) -> str:
    """A URL people can open for the object or file at `path`: on an object store a presigned URL that
    lives `seconds` (s3fs, gcsfs and adlfs sign with the credentials in the environment), a `file://`
    URL on the local disk. Raises `RunError` (one line, no credential) when the store cannot sign."""
    if not is_remote(path):
        return Path(path).resolve().as_uri()
    try:
        return str(path.fs.sign(path.path, expiration=seconds))
    except Exception as error:  # noqa: BLE001 - unsigned is said, never fatal to the caller
        raise RunError(f"{path}: the store cannot sign a link ({type(error).__name__}); open it with the store's own tools") from None

