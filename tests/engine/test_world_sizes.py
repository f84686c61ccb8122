"""World-reader metrics at sizes other than the world's 64 x 64: the image is resampled, never refused."""
from __future__ import annotations

import numpy as np
from PIL import Image

from massivelens.engine.analysis.metrics import world_image, world_score
from massivelens.engine.analysis.transport_report import attribute_transfer
from massivelens.engine.shapes.world import parse_caption, render

CAPTION = "a large red circle on a white background at top left"


def test_world_scores_hold_at_other_sizes():
    image, _ = render(parse_caption(CAPTION))
    at_64 = world_score(CAPTION, image)
    for size in (96, 128, 48):
        resized = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))
        assert world_image(resized).shape == image.shape
        score = world_score(CAPTION, resized)
        assert score.accuracy == at_64.accuracy == 1.0
        assert score.mask.shape == at_64.mask.shape and (score.mask == at_64.mask).mean() > 0.95
    other = "a large red circle on a white background at bottom right"
    wide = np.asarray(Image.fromarray(image).resize((128, 128), Image.Resampling.NEAREST))
    assert attribute_transfer(CAPTION, other, wide)[:2] == (1.0, 0.0)
