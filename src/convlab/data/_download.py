"""Dataset downloads: fetch a file from the first mirror that serves it intact, and unpack a
tar.gz archive without letting it write outside its folder.

Every file is written under a temporary name in its target folder and moved into place only
after its checksum matches, with a move that fails rather than replace a file that appeared
meanwhile: a failed or interrupted download leaves nothing behind, and files we did not
write are never overwritten or deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

__all__ = ["DatasetDownloadError", "download_file", "extract_tar_gz"]

#: How long one mirror may stay silent before the next one is tried (seconds).
TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DatasetDownloadError(RuntimeError):
    """A dataset file could not be downloaded intact, or its archive is unsafe to unpack
    (the message says from where, why, and where to put the file by hand)."""


def _hasher(checksum: str) -> hashlib._Hash:
    """MD5 for 32 hex digits (torchvision's resource lists), SHA-256 for 64."""
    if len(checksum) == 32:
        return hashlib.md5(usedforsecurity=False)
    if len(checksum) == 64:
        return hashlib.sha256()
    raise ValueError(f"checksum: expected 32 (MD5) or 64 (SHA-256) hex digits, got {checksum!r}")


def file_checksum_ok(path: Path, checksum: str) -> bool:
    """Whether ``path``'s MD5 or SHA-256 (by the length of ``checksum``) is ``checksum``."""
    digest = _hasher(checksum)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest() == checksum.lower()


def _fetch(url: str, out: Path, checksum: str, max_bytes: int) -> None:
    """Stream ``url`` into ``out``, checking its length and checksum (raises on a mismatch)."""
    digest = _hasher(checksum)
    received = 0
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(out, "wb") as f:
        declared = response.headers.get("Content-Length")
        if declared is not None and int(declared) > max_bytes:
            raise ValueError(f"the server announces {declared} bytes, more than {max_bytes}")
        while chunk := response.read(_CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise ValueError(f"more than {max_bytes} bytes")
            digest.update(chunk)
            f.write(chunk)
    if declared is not None and received != int(declared):
        raise ValueError(f"truncated: received {received} of {declared} bytes")
    if digest.hexdigest() != checksum.lower():
        raise ValueError(
            f"checksum mismatch: expected {checksum}, got {digest.hexdigest()} "
            f"({received} bytes; truncated or altered)"
        )


def _place(tmp: Path, dest: Path) -> None:
    """Move ``tmp`` to ``dest`` atomically, never replacing an existing ``dest``."""
    try:
        os.link(tmp, dest)  # fails with FileExistsError instead of overwriting
    except FileExistsError:
        raise DatasetDownloadError(
            f"{dest} appeared while it was being downloaded; it was left as it is"
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        if dest.exists():
            raise DatasetDownloadError(
                f"{dest} appeared while it was being downloaded; it was left as it is"
            ) from None
        os.replace(tmp, dest)


def download_file(mirrors: Sequence[str], dest: Path, checksum: str, max_bytes: int) -> None:
    """Download ``dest.name`` from the first of ``mirrors`` (base URLs or full URLs ending in
    the name) whose copy has the right length and ``checksum`` into ``dest``.

    Raises:
        DatasetDownloadError: If no mirror gives an intact copy (every mirror's reason is in
            the message, with where to put the file by hand).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror if mirror.endswith("/" + dest.name) else mirror + dest.name
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            print(f"Downloading {url} to {dest}", file=sys.stderr)
            _fetch(url, tmp, checksum, max_bytes)
            _place(tmp, dest)
            return
        except (OSError, ValueError, urllib.error.URLError) as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DatasetDownloadError(
        f"could not download {dest.name}: "
        + "; ".join(failures)
        + f". Download it yourself (checksum {checksum}) and put it at {dest}"
    )


def _member_path(member: tarfile.TarInfo, top: str) -> PurePosixPath:
    """The member's path, refused unless it is a plain file or folder inside ``top``."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or "\\" in member.name:
        raise DatasetDownloadError(f"member {member.name!r} points outside the archive's folder")
    if not (member.isfile() or member.isdir()):
        raise DatasetDownloadError(
            f"member {member.name!r} is a link or special file; only plain files are unpacked"
        )
    if not path.parts or path.parts[0] != top:
        raise DatasetDownloadError(f"member {member.name!r} lies outside {top}/")
    return path


def extract_tar_gz(archive: Path, folder: Path, top: str, max_bytes: int) -> None:
    """Unpack ``archive``'s folder ``top`` into ``folder / top``.

    Only plain files and folders under ``top`` are accepted (no absolute paths, ``..``,
    links or devices) and at most ``max_bytes`` in all. The folder is built under a
    temporary name and renamed into place whole.

    Raises:
        DatasetDownloadError: If the archive is unsafe, too large, corrupted, or
            ``folder / top`` appeared meanwhile.
    """
    target = folder / top
    staging = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".part", dir=folder))
    try:
        total = 0
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                path = _member_path(member, top)
                out = staging.joinpath(*path.parts)
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                total += member.size
                if total > max_bytes:
                    raise DatasetDownloadError(f"{archive}: unpacks to more than {max_bytes} bytes")
                out.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a stream
                with source, open(out, "xb") as f:
                    shutil.copyfileobj(source, f, _CHUNK)
        if not (staging / top).is_dir():
            raise DatasetDownloadError(f"{archive}: holds no {top}/ folder")
        if target.exists():
            raise DatasetDownloadError(f"{target} appeared while unpacking; it was left as it is")
        os.rename(staging / top, target)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetDownloadError(f"{archive}: corrupted archive ({err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
