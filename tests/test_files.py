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


def test_a_name_must_be_one_folder():
    from keras_vae.files import check_folder_name

    assert check_folder_name("default") == "default"
    for name in ("", ".", "..", "a/b", "/abs", None):
        with pytest.raises(ValueError, match="one folder name.*Received"):
            check_folder_name(name, "bundle name")


def make_folder(path, content):
    path.mkdir()
    (path / "file").write_text(content)
    return path


def test_replacing_a_folder_swaps_it_whole(tmp_path):
    from keras_vae.files import replace_directory

    target = make_folder(tmp_path / "bundle", "old")
    replace_directory(make_folder(tmp_path / ".new", "new"), target)
    assert (target / "file").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    replace_directory(make_folder(tmp_path / ".newer", "newer"), tmp_path / "absent")
    assert (tmp_path / "absent" / "file").read_text() == "newer"


def test_a_kill_after_the_swap_leaves_the_new_folder_in_place(tmp_path, monkeypatch):
    from keras_vae import files

    target = make_folder(tmp_path / "bundle", "old")
    source = make_folder(tmp_path / ".bundle.tmp-1-x", "new")

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(files.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        files.replace_directory(source, target)
    # Swapped atomically: the new folder is in place, the old one waits at the
    # temporary name, which the next export removes as a dead process's.
    assert (target / "file").read_text() == "new"
    assert (source / "file").read_text() == "old"


def test_where_folders_cannot_be_swapped_a_kill_mid_way_is_recovered(tmp_path, monkeypatch):
    from keras_vae import files

    monkeypatch.setattr(files, "_exchange", lambda first, second: False)
    target = make_folder(tmp_path / "run", "old")
    renames = []
    real_rename = files.os.rename

    def killed_on_second_rename(source, destination):
        renames.append(destination)
        if len(renames) == 2:
            raise KeyboardInterrupt("killed")
        real_rename(source, destination)

    monkeypatch.setattr(files.os, "rename", killed_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        files.replace_directory(make_folder(tmp_path / ".run.partial", "new"), target)
    monkeypatch.setattr(files.os, "rename", real_rename)
    assert not target.exists()  # the instant the fallback cannot avoid...
    assert files.recover_directory(target) == "restored"  # ...and what the next run does
    assert (target / "file").read_text() == "old"
    files.replace_directory(tmp_path / ".run.partial", target)
    assert (target / "file").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_stale_temporary_folders_of_dead_processes_are_removed(tmp_path):
    from keras_vae.files import remove_stale_temporaries, temporary_directory_beside

    target = tmp_path / "bundle"
    mine = temporary_directory_beside(target)
    dead = tmp_path / ".bundle.tmp-999999999-abc"
    dead.mkdir()
    other = tmp_path / ".other.tmp-999999999-abc"
    other.mkdir()
    assert remove_stale_temporaries(target) == [dead]
    assert mine.exists() and other.exists() and not dead.exists()
