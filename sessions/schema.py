"""The session file layout: the one place that names groups, datasets and attributes.

SCHEMA.md beside this file documents the same layout for readers who use plain h5py;
`tests/sessions/test_schema_doc.py` checks that every name here appears there.
"""
from __future__ import annotations

SCHEMA_NAME = "massivelens.session"
SCHEMA_VERSION = 2  # 2: the exact pipeline call, one session per image, 16-bit storage, recording profiles

STREAMS = ("image", "text", "reference")  # reference: tokens of reference images (edit pipelines)

# Root attributes.
ATTR_SCHEMA = "schema"
ATTR_VERSION = "schema_version"
ATTR_COMPLETE = "complete"
ATTR_STEPS_DONE = "steps_done"
ATTR_KIND = "kind"
ATTR_IMAGE_INDEX = "image_index"  # which image of the pipeline call this session holds (v2)
ATTR_IMAGES = "images_in_call"  # how many images the call made, one session each (v2)
ATTR_PROFILE = "profile"  # what the recording kept (v2): see PROFILES
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
GRID = "grid"  # (h, w) of the image-token grid; (frames, h, w) in latent tokens for a video
MEAN_ABS = "mean_abs"  # <stream>/mean_abs: (steps, blocks, channels)
MAX_ABS = "max_abs"  # <stream>/max_abs: (steps, blocks, channels)
MEDIAN_ABS = "median_abs"  # <stream>/median_abs: (steps, blocks)
PEAK_ABS = "peak_abs"  # <stream>/peak_abs: (steps, blocks), the largest |x| of the hidden state (v2)
MEAN_RUN = "mean_abs_run"  # <stream>/mean_abs_run: (blocks, channels), mean over the steps done of mean_abs (v2)
MAX_RUN = "max_abs_run"  # <stream>/max_abs_run: (blocks, channels), max over the steps done of max_abs (v2)
SUN_STEPS = "sun_steps"  # <stream>/sun_steps: (blocks, channels), steps at which Sun et al.'s rule held (v2)
ROW_STEPS_ATTR = "steps"  # on a dataset that keeps some steps only: the step id of each row (v2 lean, hidden)
TOP_CHANNELS = "top_channels"  # image/top_channels: (steps, blocks, k), largest mean |x| first
TOP_MAPS = "top_maps"  # image/top_maps: (steps, blocks, k, h, w), signed values; (steps, blocks, k, frames, h, w) for a video
TOP_FRAME_MEAN_ABS = "top_frame_mean_abs"  # video only, image/top_frame_mean_abs: (steps, blocks, k, frames)
# Optional control sets for the paper's comparisons, stored as image/<set>_channels and image/<set>_maps:
# "bottom" = the k smallest mean |x| (smallest first), "random" = k channels drawn once per block, `draws`
# times (image/random_channels holds draws x k columns, draw d in columns d*k ... d*k+k-1; its attribute
# DRAWS_ATTR says how many, 1 when absent), seeded by the prompt and seed of the image and the draw.
CONTROL_SETS = ("bottom", "random")
DRAWS_ATTR = "draws"
RANDOM_DRAWS = 5  # random-k draws per block and image: one draw is one sample, not a control
HIDDEN = "hidden"  # hidden/<stream>/<block>: (len(steps attr), tokens, channels)
HIDDEN_STEPS_ATTR = ROW_STEPS_ATTR
IMAGE = "output/image"  # (H, W, 3) uint8
FRAMES = "output/frames"  # video only: (frames, H, W, 3) uint8
CALL = "call"  # scalar JSON string: the pipeline call as made (v2), see SCHEMA.md
CALL_INPUTS = "call_inputs"  # call_inputs/<argument>: array arguments of the call (latents, embeddings, images)
INPUT_KIND_ATTR = "kind"  # "tensor" (with its torch dtype in INPUT_DTYPE_ATTR), "array" or "pil"
INPUT_DTYPE_ATTR = "dtype"

# Recording profiles: what a session keeps. full: every statistic at every step in float32, token maps at
# every step; default: statistics in float16 (scaled); lean: per-channel statistics and token maps only at
# chosen steps (the middle and last by default), run aggregates and per-step ranks and medians always.
PROFILES = ("full", "default", "lean")

# Sun et al. (2024): a massive activation is > 100 in magnitude and > 1000x the median.
SUN_ABSOLUTE = 100.0
SUN_RELATIVE = 1000.0
