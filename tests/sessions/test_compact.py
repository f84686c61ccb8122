"""16-bit storage keeps the range (Qwen-Image reaches ~2e7; 1e8 must survive) and the stated precision;
the engine's device encoders and the documented numpy formulas agree; version-1 files still open."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from massivelens.engine.core import compact as device
from massivelens.sessions import compact
from massivelens.sessions.massive import summarize
from massivelens.sessions.reader import open_session

V1 = Path(__file__).resolve().parents[1] / "data" / "session-v1.h5"


def test_token_maps_keep_every_value_within_its_map_max_over_65534():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 5, 8, 8)).astype(np.float32) * np.array([1e-3, 1.0, 1e8])[:, None, None, None].astype(np.float32)
    maps[1, 2] = 0.0  # an all-zero map stays zero
    codes, scale = device.encode_maps(torch.from_numpy(maps), grid_dims=2)
    decoded = compact.decode_maps(codes.numpy(), scale.numpy())
    bound = np.abs(maps).max(axis=(-2, -1), keepdims=True) / 65534 * 1.0001
    assert codes.dtype == torch.int16 and scale.dtype == torch.float32
    assert np.all(np.abs(decoded - maps) <= bound) and np.all(decoded[1, 2] == 0)
    assert np.abs(decoded - maps).max() / np.abs(maps).max() <= 1e-3  # the bar, by a wide margin
    numpy_codes, numpy_scale = compact.encode_maps(maps)
    np.testing.assert_array_equal(numpy_codes, codes.numpy())
    np.testing.assert_allclose(numpy_scale, scale.numpy(), rtol=1e-7)


def test_statistics_keep_float16_precision_across_a_huge_range():
    """Relative precision 2^-11 for every value down to 2^-28 of its row's largest (Qwen-Image's 2e7 next
    to channels of 0.1); below that, an absolute error under 2^-38 of the row's largest."""
    values = np.array([[2e7, 3.0, 0.1, 1e-5, 0.0], [1.0, 0.5, 0.25, 1e-6, 0.0]], np.float32)
    codes, scale = device.encode_stats(torch.from_numpy(values))
    decoded = compact.decode_stats(codes.numpy(), scale.numpy())
    assert codes.dtype == torch.float16 and np.isfinite(decoded).all()
    in_range = values >= values.max(axis=1, keepdims=True) * 2.0**-28
    np.testing.assert_allclose(decoded[in_range], values[in_range], rtol=2**-11, atol=0)
    assert np.all(np.abs(decoded - values)[~in_range] <= values.max(axis=1, keepdims=True).repeat(5, 1)[~in_range] * 2.0**-38)
    assert set(np.log2(scale.numpy()).tolist()) <= set(range(-64, 64))  # powers of two: scaling itself is exact
    nan_row = torch.full((1, 4), float("nan"))
    codes, scale = device.encode_stats(nan_row)
    assert np.isnan(compact.decode_stats(codes.numpy(), scale.numpy())).all()


def test_version_one_files_still_open_with_their_exact_values():
    with open_session(V1) as s, h5py.File(V1, "r") as f:
        assert f.attrs["schema_version"] == 1 and s.profile == "full"
        assert s.complete and s.steps_done == 3 and s.call == {} and s.image_index == 0
        np.testing.assert_array_equal(s.mean_abs("image"), f["image/mean_abs"][:])
        np.testing.assert_array_equal(s.top_maps(1, 2), f["image/top_maps"][1, 2])
        np.testing.assert_array_equal(s.mean_abs_run("image"), f["image/mean_abs"][:].mean(axis=0))
        np.testing.assert_array_equal(s.peak_abs("image"), f["image/max_abs"][:].max(axis=-1))
        assert s.stat_steps == [0, 1, 2] and s.channel_sets == ("top", "bottom")
        assert summarize(s)[0].top_channels[:3] == [7, 3, 11]
        assert s.massive("sun")["double.0"] == [7]
