"""Files of corpus and model folders: atomic writes (a reader sees the old file or the new, never half)
and JSON reads that name the file when it cannot be used."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from musiclstm.config import MusicLSTMError


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file through a temporary sibling, fsync and a rename, making its folder if it is missing.

    Raises:
        MusicLSTMError: the file could not be written (a full disk, no permission), named with the
            reason; nothing is left under its name or beside it.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)  # mkstemp makes 0600; give the file the user's usual permissions
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as err:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise write_failure(path, err) from err
    except BaseException:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        raise


def write_failure(path: str | Path, err: OSError) -> MusicLSTMError:
    """The user's error for a file or folder the system would not let us write, naming it and the reason, with
    what to do for a full disk."""
    reason = (
        "no space left on the device; free some space or choose another folder" if err.errno == errno.ENOSPC else None
    )
    return MusicLSTMError(f"{path}: could not be written ({reason or err.strerror or err})")


def write_bytes_atomically(path: Path, data: bytes) -> None:
    write_atomically(path, lambda file: file.write(data))


def write_json_atomically(path: Path, value: object) -> None:
    write_bytes_atomically(path, (json.dumps(value, indent=1) + "\n").encode("utf-8"))


def read_json_object(path: Path) -> dict:
    """Read a JSON file that must hold an object; a missing, unreadable or malformed file is named."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MusicLSTMError(f"{path}: unreadable ({err})") from err
    if not isinstance(value, dict):
        raise MusicLSTMError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def check_output_folder(path: str | Path) -> Path:
    """Refuse, before any work, a folder that cannot be written: a file in its place or above it, or no permission.

    Nothing is created here: the nearest existing folder on the way must be one we may write into.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MusicLSTMError(f"{path}: exists and is not a folder; choose another output folder")
    existing = next(parent for parent in (path, *path.parents) if parent.exists() or parent == Path(parent.anchor))
    if not existing.is_dir():
        raise MusicLSTMError(f"{path}: {existing} is a file, not a folder; choose another output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MusicLSTMError(f"{path}: no permission to write in {existing}")
    return path


def check_output_file(path: str | Path) -> Path:
    """Refuse, before any work, a file path that cannot be written: a folder in its place, or an unwritable folder."""
    path = Path(path)
    if path.is_dir():
        raise MusicLSTMError(f"{path}: is a folder; give a file name")
    check_output_folder(path.parent)
    return path


def pyplot():
    """matplotlib's pyplot drawing to files only (the Agg backend), so no display is ever needed; imported when
    first drawn with, as matplotlib takes a second to load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
