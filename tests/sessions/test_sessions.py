"""Session files: round trip, rules on stored statistics, and clear errors for bad files."""
from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from massivelens.sessions import schema as S
from massivelens.sessions.massive import (
    bottom_channels,
    summarize,
    sun_massive,
    top_channels,
)
from massivelens.sessions.reader import SessionError, open_session
from tests.session_factory import PLANTED, write_synthetic_session


def test_round_trip_keeps_planted_channels(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5", hidden_blocks=("double.1",))
    with open_session(path) as s:
        assert s.complete and s.steps_done == 3
        assert s.info["prompt"].startswith("a small red circle")
        assert s.grid == (8, 8) and s.k == 4 and s.blocks("image")[1] == "double.1"
        assert list(s.top_channels(0)[0][:3]) == list(PLANTED)
        assert s.mean_abs("image").shape == (3, 4, 32)
        assert s.image.shape == (64, 64, 3)
        top_map = s.token_map(1, 2, PLANTED[0])
        assert top_map.shape == (8, 8) and top_map[0, 0] > top_map[-1, -1]
        hidden_map = s.token_map(1, 1, 20)  # not a top channel: read from the full hidden states
        assert hidden_map is not None and hidden_map.shape == (8, 8)
        assert s.token_map(1, 0, 20) is None


def _gzip_copy(src, dst) -> None:
    """The same session with every dataset gzip-compressed, as sessions written before 2026-11-26 are."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        b.attrs.update(a.attrs)

        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                kwargs = dict(compression="gzip", shuffle=True, chunks=obj.chunks, maxshape=obj.maxshape) if obj.chunks else {}
                b.create_dataset(name, data=obj[()], **kwargs).attrs.update(obj.attrs)

        a.visititems(copy)


def test_sessions_are_written_uncompressed_and_gzip_files_still_read(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5", hidden_blocks=("double.1",))
    with h5py.File(path, "r") as f:
        assert f[f"image/{S.TOP_MAPS}"].compression is None and f[f"image/{S.MEAN_ABS}"].compression is None
    _gzip_copy(path, tmp_path / "old.h5")
    with open_session(path) as new, open_session(tmp_path / "old.h5") as old:
        assert old.complete and old.steps_done == new.steps_done
        np.testing.assert_array_equal(old.mean_abs("image"), new.mean_abs("image"))
        np.testing.assert_array_equal(old.top_maps(1, 2), new.top_maps(1, 2))
        np.testing.assert_array_equal(old.token_map(1, 1, 20), new.token_map(1, 1, 20))
        np.testing.assert_array_equal(old.image, new.image)


def test_rules_apply_to_stored_statistics(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5")
    with open_session(path) as s:
        mean = s.mean_abs("image", 0)
        assert list(top_channels(mean, 2)[0]) == [7, 3]
        assert 7 not in bottom_channels(mean, 4)[0]
        sun = sun_massive(s.max_abs("image", 0), s.median_abs("image", 0))
        assert set(np.flatnonzero(sun[0])) == {PLANTED[0]}
        rows = summarize(s)
        assert rows[0].top_channels[:3] == list(PLANTED)
        assert rows[0].max_over_median > 1000


def test_interrupted_session_opens_as_incomplete(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5", steps=5, steps_written=2, complete=False)
    with open_session(path) as s:
        assert not s.complete and s.steps_done == 2
        assert s.mean_abs("image").shape[0] == 2 and s.image is None
        with pytest.raises(SessionError, match="step 3 not recorded"):
            s.top_maps(3, 0)


def test_writer_refuses_to_overwrite(tmp_path):
    path = write_synthetic_session(tmp_path / "s.h5")
    with pytest.raises(FileExistsError):
        write_synthetic_session(path)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("foreign", "not a MassiveLens session"),
        ("newer", "newer MassiveLens"),
        ("truncated", "truncated or corrupt"),
        ("garbage", "truncated or corrupt"),
        ("missing", "no such file"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, damage, message):
    path = tmp_path / "bad.h5"
    if damage == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif damage == "newer":
        write_synthetic_session(path)
        with h5py.File(path, "a") as f:
            f.attrs[S.ATTR_VERSION] = S.SCHEMA_VERSION + 1
    elif damage == "truncated":
        write_synthetic_session(path, blocks=8, channels=256)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(SessionError, match=message) as info:
        open_session(path)
    assert "\n" not in str(info.value)


def test_schema_doc_names_every_dataset_and_attribute():
    doc = (S.__file__.replace("schema.py", "SCHEMA.md"))
    text = open(doc).read()
    names = [S.ATTR_SCHEMA, S.ATTR_VERSION, S.ATTR_COMPLETE, S.ATTR_STEPS_DONE, S.ATTR_KIND, *S.RUN_ATTRS, *S.JSON_ATTRS]
    names += [S.TIMESTEPS, S.BLOCKS, S.GRID, S.MEAN_ABS, S.MAX_ABS, S.MEDIAN_ABS, S.TOP_CHANNELS, S.TOP_MAPS, S.HIDDEN, S.IMAGE]
    names += [S.ATTR_IMAGE_INDEX, S.ATTR_IMAGES, S.CALL, S.CALL_INPUTS, S.INPUT_KIND_ATTR, S.INPUT_DTYPE_ATTR, S.ATTR_PROFILE]
    names += [S.PEAK_ABS, S.MEAN_RUN, S.MAX_RUN, S.SUN_STEPS, S.ROW_STEPS_ATTR, *S.PROFILES]
    spans = re.findall(r"`([^`]+)`", text)
    missing = [n for n in names if not any(span == n or span.endswith("/" + n) or span.startswith(n + "/") for span in spans)]
    assert not missing, f"SCHEMA.md does not document {missing}"
    assert f"version {S.SCHEMA_VERSION}" in text
