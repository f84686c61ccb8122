"""The session file layout: the one place that names groups, datasets and attributes.

SCHEMA.md beside this file documents the same layout for readers who use plain h5py;
`tests/sessions/test_schema_doc.py` checks that every name here appears there.
"""
from __future__ import annotations

SCHEMA_NAME = "massivelens.session"
SCHEMA_VERSION = 2  # 2: the exact pipeline call, one session per image of a call

STREAMS = ("image", "text", "reference")  # reference: tokens of reference images (edit pipelines)

# Root attributes.
ATTR_SCHEMA = "schema"
ATTR_VERSION = "schema_version"
ATTR_COMPLETE = "complete"
ATTR_STEPS_DONE = "steps_done"
ATTR_KIND = "kind"
ATTR_IMAGE_INDEX = "image_index"  # which image of the pipeline call this session holds (v2)
ATTR_IMAGES = "images_in_call"  # how many images the call made, one session each (v2)
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
JSON_ATTRS = ("transformer_config", "scheduler_config", "versions", "extra", "tokens")

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
CALL = "call"  # scalar JSON string: the pipeline call as made (v2), see SCHEMA.md
CALL_INPUTS = "call_inputs"  # call_inputs/<argument>: array arguments of the call (latents, embeddings, images)
INPUT_KIND_ATTR = "kind"  # "tensor" (with its torch dtype in INPUT_DTYPE_ATTR), "array" or "pil"
INPUT_DTYPE_ATTR = "dtype"

# Sun et al. (2024): a massive activation is > 100 in magnitude and > 1000x the median.
SUN_ABSOLUTE = 100.0
SUN_RELATIVE = 1000.0
