"""Writing files so that a reader never sees a half-written one."""

import os
import shutil
import tempfile
from pathlib import Path


def write_bytes_atomically(path, data):
    """Writes `data` to a temporary file beside `path`, then renames it into place.

    Args:
        path: destination file.
        data: bytes to write.
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp creates the file readable by its owner only; give it the
        # permissions an ordinary new file gets.
        os.fchmod(descriptor, 0o666 & ~_umask())
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def temporary_directory_beside(target):
    """Creates an empty folder next to `target` to build it in, then rename.

    Args:
        target: the folder that will eventually be replaced.

    Returns:
        The new folder's `Path`, with the permissions of an ordinary new folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    folder.chmod(0o777 & ~_umask())
    return folder


def replace_directory(source, target):
    """Renames folder `source` to `target`, replacing an existing `target` last.

    Args:
        source: the complete new folder.
        target: where it goes.
    """
    source, target = Path(source), Path(target)
    if not target.exists():
        source.rename(target)
        return
    retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
    target.rename(retired / target.name)
    source.rename(target)
    shutil.rmtree(retired)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
