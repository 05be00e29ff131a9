import gzip

import numpy as np
import pytest

from keras_vae.data import DataFileError, read_idx
from tests.support.toy_data import idx_bytes


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a-idx3-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(array)) if compress else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)


def test_bad_idx_files_are_named_with_their_problem(tmp_path):
    good = idx_bytes(np.zeros((4, 5, 5), np.uint8))
    cases = {
        "missing": (None, "not found"),
        "truncated": (good[:-7], r"truncated.*\(4, 5, 5\).*100 bytes.*93"),
        "long": (good + b"\0", "longer than its header"),
        "magic": (b"\x00\x00\x0d\x03" + good[4:], "not an IDX file of unsigned bytes"),
        "gzip": (gzip.compress(good)[:-10], "corrupt or truncated gzip"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(DataFileError, match=message):
            read_idx(path)
