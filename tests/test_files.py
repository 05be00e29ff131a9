import os
import stat

import pytest

from keras_vae.files import write_bytes_atomically


def test_writes_the_bytes_with_ordinary_permissions(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomically(path, b"first")
    write_bytes_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"good")
    with pytest.raises(TypeError):
        write_bytes_atomically(path, "not bytes")
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_temporary_directory_beside_a_target(tmp_path):
    from keras_vae.files import temporary_directory_beside

    folder = temporary_directory_beside(tmp_path / "nested" / "run")
    assert folder.parent == tmp_path / "nested" and folder.name.startswith(".run.")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask
