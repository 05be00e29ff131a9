"""Writing files so that a reader never sees a half-written one."""

import os
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
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
