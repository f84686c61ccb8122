"""The session file layout: the one place that names groups, datasets and attributes.

SCHEMA.md beside this file documents the same layout for readers who use plain h5py;
`tests/sessions/test_schema_doc.py` checks that every name here appears there.
"""
from __future__ import annotations

SCHEMA_NAME = "massivelens.session"
SCHEMA_VERSION = 1

STREAMS = ("image", "text")

# Root attributes.
ATTR_SCHEMA = "schema"
ATTR_VERSION = "schema_version"
ATTR_COMPLETE = "complete"
ATTR_STEPS_DONE = "steps_done"
ATTR_KIND = "kind"
RUN_ATTRS = (
    "model",
    "pipeline_class",
    "transformer_class",
    "dtype",
    "device",
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "guidance",
    "height",
    "width",
    "k",
    "scheduler",
    "created",
)
JSON_ATTRS = ("transformer_config", "scheduler_config", "versions", "extra")

# Datasets.
TIMESTEPS = "timesteps"
BLOCKS = "blocks"  # BLOCKS/<stream>: block names of that stream, in call order
GRID = "grid"  # (h, w) of the image-token grid
MEAN_ABS = "mean_abs"  # <stream>/mean_abs: (steps, blocks, channels)
MAX_ABS = "max_abs"  # <stream>/max_abs: (steps, blocks, channels)
MEDIAN_ABS = "median_abs"  # <stream>/median_abs: (steps, blocks)
TOP_CHANNELS = "top_channels"  # image/top_channels: (steps, blocks, k), largest mean |x| first
TOP_MAPS = "top_maps"  # image/top_maps: (steps, blocks, k, h, w), signed values
# Optional control sets for the paper's comparisons, stored as image/<set>_channels and image/<set>_maps:
# "bottom" = the k smallest mean |x| (smallest first), "random" = k channels drawn once per block.
CONTROL_SETS = ("bottom", "random")
HIDDEN = "hidden"  # hidden/<stream>/<block>: (len(steps attr), tokens, channels)
HIDDEN_STEPS_ATTR = "steps"
IMAGE = "output/image"  # (H, W, 3) uint8

# Sun et al. (2024): a massive activation is > 100 in magnitude and > 1000x the median.
SUN_ABSOLUTE = 100.0
SUN_RELATIVE = 1000.0
