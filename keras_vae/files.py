"""Writing files and folders so that a reader never sees a half-written one."""

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

# renameat2's flag that swaps two paths atomically (Linux 3.15+, most file systems).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


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


def check_folder_name(name, what="folder name"):
    """Checks that `name` names one folder: not empty, one path component, not `.` or `..`.

    Args:
        name: the name to check.
        what: what the name is, for the message.

    Returns:
        `name`.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(
            f"Expected the {what} to be one folder name (not empty, no '/', not '.' "
            f"or '..'). Received: {name!r}"
        )
    return name


@contextlib.contextmanager
def exclusive_lock(folder):
    """Holds an exclusive lock on `folder` for the block.

    Another process or thread that asks for the same lock waits until the block
    ends. The lock is `flock` on the folder itself: it leaves no file behind, and
    a process that dies lets go of it.

    Args:
        folder: an existing folder.
    """
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def temporary_directory_beside(target):
    """Creates an empty folder next to `target` to build it in, then rename.

    Its name records this process, so that `remove_stale_temporaries` can tell
    the folders of processes that died from those of processes still working.

    Args:
        target: the folder that will eventually be replaced.

    Returns:
        The new folder's `Path`, with the permissions of an ordinary new folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.tmp-{os.getpid()}-"
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))
    folder.chmod(0o777 & ~_umask())
    return folder


def remove_stale_temporaries(target):
    """Removes the temporary folders beside `target` of processes that no longer run.

    Args:
        target: a folder built through `temporary_directory_beside`.

    Returns:
        The list of removed folders.
    """
    target = Path(target)
    removed = []
    for folder in target.parent.glob(f".{target.name}.tmp-*-*"):
        pid = folder.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if pid.isdigit() and not _process_runs(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def replace_directory(source, target):
    """Moves the complete folder `source` to `target`, replacing any old `target`.

    `target` shows the old folder or the new one at every instant: the two are
    swapped atomically (Linux's `renameat2` with `RENAME_EXCHANGE`), then the
    old one, now at `source`'s path, is removed. Where the file system cannot
    swap, the old folder is first renamed to `.<name>.retired` beside it; if the
    process dies before the new one takes its place, `recover_directory` puts
    it back.

    Args:
        source: the complete new folder.
        target: where it goes.
    """
    source, target = Path(source), Path(target)
    recover_directory(target)
    if not target.exists():
        os.rename(source, target)
        return
    if _exchange(source, target):
        shutil.rmtree(source)
        return
    retired = _retired(target)
    os.rename(target, retired)
    os.rename(source, target)
    shutil.rmtree(retired)


def recover_directory(target):
    """Finishes what an interrupted `replace_directory` left of `target`.

    Args:
        target: a folder that `replace_directory` replaces.

    Returns:
        `"restored"` if the old folder was put back, `"removed"` if a leftover
        of a finished replacement was removed, else `None`.
    """
    target = Path(target)
    retired = _retired(target)
    if not retired.exists():
        return None
    if not target.exists():
        os.rename(retired, target)
        return "restored"
    shutil.rmtree(retired)
    return "removed"


def _retired(target):
    return target.parent / f".{target.name}.retired"


def _exchange(first, second):
    """Swaps two paths atomically; returns False where the system cannot."""
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if rename is None:
        return False
    paths = (os.fsencode(first), os.fsencode(second))
    if rename(_AT_FDCWD, paths[0], _AT_FDCWD, paths[1], _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _process_runs(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
