"""The shapes world grammar/renderer and the reader that scores generated images."""

import numpy as np
import pytest
import torch

from massivelens.engine.shapes import reader, world

torch.set_num_threads(1)


def test_caption_round_trip_covers_every_combination():
    combos = world.all_attributes()
    assert len(combos) == 2 * 6 * 5 * 3 * 5
    for attrs in combos:
        assert world.parse_caption(attrs.caption) == attrs


@pytest.mark.parametrize(
    "caption",
    [
        "a huge red circle on a blue background at center",
        "a small red circle on a red background at center",
        "a small red hexagon on a blue background at center",
        "a small red circle on a blue background at middle",
        "small red circle on blue",
        "",
    ],
)
def test_caption_outside_grammar_raises(caption):
    with pytest.raises(ValueError, match="outside the grammar"):
        world.parse_caption(caption)


def test_render_is_deterministic_and_seeded():
    caption, image, mask = world.sample(7)
    again = world.sample(7)
    assert again[0] == caption and np.array_equal(again[1], image) and np.array_equal(again[2], mask)
    assert image.shape == (world.SIZE, world.SIZE, 3) and image.dtype == np.uint8
    assert mask.shape == (world.SIZE, world.SIZE) and mask.dtype == bool and mask.any()
    attrs = world.parse_caption(caption)
    assert np.all(image[mask] == world.PALETTE[attrs.color])
    assert np.all(image[~mask] == world.PALETTE[attrs.background])


def test_heldout_split_is_disjoint_from_training_seeds():
    seeds = world.heldout_seeds(10)
    assert all(world.is_heldout(s) for s in seeds)
    assert not world.is_heldout(world.HELDOUT_SEED_BASE - 1)


def test_vocabulary_is_single_words():
    vocab = world.vocabulary()
    assert len(vocab) == len(set(vocab)) and all(" " not in w for w in vocab)
    assert {"top", "left", "center", "triangle", "background"} <= set(vocab)


def test_reader_recovers_heldout_renders():
    samples = world.heldout_samples(500)
    result = reader.score([(c, im) for c, im, _ in samples], [m for _, _, m in samples])
    for name in world.ATTRIBUTES:
        assert result[name] >= 0.99, (name, result)
    assert result["all_five"] >= 0.99
    assert result["mask_iou"] > 0.9


def test_reader_tolerates_noise():
    rng = np.random.default_rng(0)
    samples = world.heldout_samples(100, offset=1000)
    noisy = [
        (c, np.clip(im.astype(np.int16) + rng.normal(0, 25, im.shape), 0, 255).astype(np.uint8))
        for c, im, _ in samples
    ]
    result = reader.score(noisy, [m for _, _, m in samples])
    assert result["all_five"] >= 0.95 and result["mask_iou"] > 0.85


def test_reader_returns_partial_reading_for_blank_image():
    blank = np.zeros((world.SIZE, world.SIZE, 3), dtype=np.uint8)
    reading, mask = reader.read(blank)
    assert reading.background == "black" and reading.shape is None
    assert reading.attributes() is None and not mask.any()


def test_mask_iou():
    a = np.zeros((4, 4), dtype=bool)
    b = a.copy()
    a[:2] = True
    b[1:3] = True
    assert reader.mask_iou(a, b) == pytest.approx(4 / 12)
    assert reader.mask_iou(b, b) == 1.0
