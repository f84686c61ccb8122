"""Dataset summaries over synthetic sessions: planted frequencies, Jaccard stability, Sun's rule, round trip."""
from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from massivelens.sessions import schema as S
from massivelens.sessions import summary_schema as SS
from massivelens.sessions.dataset_summary import (
    Failure,
    SessionEntry,
    read_summary,
    summarize_dataset,
    summary_json,
    write_summary,
)
from massivelens.sessions.reader import SessionError
from massivelens.sessions.records import Layout
from massivelens.sessions.writer import SessionWriter
from tests.session_factory import PLANTED, float_step, synthetic_info, write_synthetic_session

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "sessions" / "SCHEMA.md"


def write_ranked(path: Path, top: tuple[int, ...], peak: float = 10.0, channels: int = 8) -> SessionEntry:
    """One block, one step, image stream only: `top` gets mean |x| 10, 9, ...; the rest 1; median 1.
    Channel `top[0]` peaks at `peak`, so Sun et al.'s rule holds when peak > 1000."""
    mean = np.ones((1, channels), np.float32)
    mean[0, list(top)] = 10 - np.arange(len(top))
    peak_abs = mean.copy()
    peak_abs[0, top[0]] = peak
    layout = Layout(blocks={"image": ["double.0"]}, channels={"image": channels}, grid=(2, 2))
    writer = SessionWriter(path, synthetic_info(steps=1, k=2), layout)
    ranked = np.asarray([top[:2]], np.int32)
    stats = {"image": (mean, peak_abs, np.ones(1, np.float32))}
    writer.write_step(float_step(layout, 0, 1000.0, stats, {"top": ranked}, {"top": np.zeros((1, 2, 2, 2), np.float32)}, {}))
    writer.finish(np.zeros((4, 4, 3), np.uint8))
    return SessionEntry(path.name, 0, 0)


def test_planted_channels_are_always_in_the_top_k(tmp_path):
    entries = [
        SessionEntry(write_synthetic_session(tmp_path / f"{i}.h5", seed=i).name, prompt, seed)
        for i, (prompt, seed) in enumerate([(0, 0), (0, 1), (1, 0)])
    ]
    summary = summarize_dataset(tmp_path, entries, ["p0", "p1"], [], k=4, model="synthetic", settings={})
    image = summary.streams["image"]
    np.testing.assert_array_equal(image.frequency[:, list(PLANTED)], 1.0)
    np.testing.assert_allclose(image.frequency.sum(axis=1), 4.0)  # k channels per session and block
    np.testing.assert_array_equal(image.top_channels[:, :, :3], np.broadcast_to(PLANTED, (3, 4, 3)))
    # Sun et al.'s rule: only PLANTED[0] passes, in every session and block.
    np.testing.assert_array_equal(image.sun_frequency[:, PLANTED[0]], 1.0)
    assert image.sun_frequency.sum() == 4.0 and image.sun_holds.all()
    step_means = []
    for entry in entries:
        with h5py.File(tmp_path / entry.file) as f:
            step_means.append(f["image/mean_abs_run"][:])  # the exact mean over steps
            per_step = f["image/mean_abs"][:] * f["image/mean_abs_scale"][:][..., None]  # SCHEMA.md's formula
            np.testing.assert_allclose(per_step.mean(axis=0), step_means[-1], rtol=1e-3)
    np.testing.assert_allclose(image.mean_abs_mean, np.mean(step_means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(image.mean_abs_std, np.std(step_means, axis=0), rtol=1e-4, atol=1e-5)


def test_jaccard_across_seeds_and_prompts(tmp_path):
    a = write_ranked(tmp_path / "a.h5", (0, 1), peak=5000.0)
    b = write_ranked(tmp_path / "b.h5", (1, 2))
    c = write_ranked(tmp_path / "c.h5", (0, 1))
    entries = [SessionEntry(a.file, 0, 0), SessionEntry(b.file, 0, 1), SessionEntry(c.file, 1, 0)]
    image = summarize_dataset(tmp_path, entries, ["p0", "p1"], [], k=2, model="m", settings={}).streams["image"]
    # Prompt 0: {0,1} vs {1,2} share one of three channels. Prompt 1 has one seed.
    np.testing.assert_allclose(image.jaccard_seeds[:, 0], [1 / 3, np.nan], rtol=1e-6)
    # Pairs of different prompts: a-c (identical) and b-c (1/3).
    np.testing.assert_allclose(image.jaccard_prompts, [2 / 3], rtol=1e-6)
    np.testing.assert_allclose(image.frequency[0, :3], [2 / 3, 1.0, 1 / 3], rtol=1e-6)
    np.testing.assert_array_equal(image.sun_holds[:, 0], [True, False, False])
    np.testing.assert_allclose(image.sun_frequency[0, 0], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(image.max_over_median[:, 0], [5000.0, 10.0, 10.0])


def test_write_and_read_round_trip(tmp_path):
    entries = [write_ranked(tmp_path / "a.h5", (0, 1)), write_ranked(tmp_path / "b.h5", (1, 2))]
    entries[1] = SessionEntry(entries[1].file, 0, 1)
    failed = [Failure("sessions/00001-seed0.h5", 1, 0, "the prompt is empty")]
    summary = summarize_dataset(tmp_path, entries, ["a cat", ""], failed, k=2, model="m", settings={"steps": 2})
    h5_path, json_path = write_summary(summary, tmp_path)
    back = read_summary(tmp_path)
    assert (back.k, back.model, back.settings, back.prompts) == (2, "m", {"steps": 2}, ["a cat", ""])
    assert back.sessions == entries and back.failed == failed
    for name in SS.STREAM_DATASETS:
        np.testing.assert_array_equal(getattr(back.streams["image"], name), getattr(summary.streams["image"], name))
    assert back.streams["image"].blocks == ["double.0"]
    data = json.loads(json_path.read_text())
    assert data == json.loads(json.dumps(summary_json(back)))
    assert data["failed"] == [{"file": "sessions/00001-seed0.h5", "prompt_index": 1, "prompt": "", "seed": 0, "error": "the prompt is empty"}]
    [block] = data["blocks"]
    assert block["jaccard_seeds"] == pytest.approx(1 / 3) and block["jaccard_prompts"] is None
    assert [c["channel"] for c in block["frequent_channels"]] == [1, 0]
    assert block["frequent_channels"][0]["frequency"] == 1.0
    assert read_summary(h5_path).sessions == entries


def test_summary_without_sessions_lists_the_failures(tmp_path):
    failed = [Failure("sessions/00000-seed0.h5", 0, 0, "out of memory on cuda:0")]
    write_summary(summarize_dataset(tmp_path, [], ["x"], failed, k=4, model="m", settings={}), tmp_path)
    back = read_summary(tmp_path)
    assert back.sessions == [] and back.streams == {} and back.failed == failed


def test_bad_summary_files_give_one_line_errors(tmp_path):
    with pytest.raises(SessionError, match="no such file"):
        read_summary(tmp_path)
    session = write_synthetic_session(tmp_path / "s.h5")
    with pytest.raises(SessionError, match="not a MassiveLens dataset summary"):
        read_summary(session)
    write_summary(summarize_dataset(tmp_path, [], ["x"], [], k=4, model="m", settings={}), tmp_path)
    with h5py.File(tmp_path / SS.SUMMARY_H5, "a") as f:
        f.attrs[S.ATTR_VERSION] = SS.SCHEMA_VERSION + 1
    with pytest.raises(SessionError, match="newer MassiveLens"):
        read_summary(tmp_path)


def test_every_summary_name_is_documented():
    doc = SCHEMA_DOC.read_text()
    names = [v for k, v in vars(SS).items() if k.isupper() and isinstance(v, str)]
    missing = [name for name in names if not re.search(rf"`[^`]*{re.escape(name)}[^`]*`", doc)]
    assert not missing
