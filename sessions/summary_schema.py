"""The dataset-summary layout (`summary.h5` of a batch directory): the one place that names it.

SCHEMA.md ("Dataset summaries") documents the same layout for plain h5py users;
`tests/sessions/test_dataset_summary.py` checks that every name here appears there.
Root `schema`/`schema_version` and `blocks/<stream>` reuse the session file's names (sessions/schema.py).
"""
from __future__ import annotations

SCHEMA_NAME = "massivelens.summary"
SCHEMA_VERSION = 1

SUMMARY_H5 = "summary.h5"
SUMMARY_JSON = "summary.json"

# Root attributes (besides schema and schema_version).
ATTR_K = "k"
ATTR_MODEL = "model"
ATTR_SETTINGS = "settings"  # JSON str: the batch's generation settings
ATTR_CREATED = "created"

# Datasets.
PROMPTS = "prompts"  # (prompts,) str, by prompt index
SESSION_FILE = "sessions/file"  # (n,) str, relative to the batch directory; complete sessions only
SESSION_PROMPT = "sessions/prompt_index"  # (n,) i8
SESSION_SEED = "sessions/seed"  # (n,) i8
FAILED_FILE = "failed/file"  # (m,) str: jobs without a complete session
FAILED_PROMPT = "failed/prompt_index"  # (m,) i8
FAILED_SEED = "failed/seed"  # (m,) i8
FAILED_ERROR = "failed/error"  # (m,) str, one line

# Per stream: <stream>/<name>.
FREQUENCY = "frequency"  # (blocks, channels) f4: fraction of sessions with the channel in their top-k
MEAN_ABS_MEAN = "mean_abs_mean"  # (blocks, channels) f4: mean over sessions of the step-averaged mean |x|
MEAN_ABS_STD = "mean_abs_std"  # (blocks, channels) f4: its standard deviation over sessions (ddof 0)
TOP_CHANNELS = "top_channels"  # (n, blocks, k) i4: each session's top-k, largest first; -1 where a block has no such stream
JACCARD_SEEDS = "jaccard_seeds"  # (prompts, blocks) f4: mean pairwise Jaccard of top-k sets across one prompt's seeds
JACCARD_PROMPTS = "jaccard_prompts"  # (blocks,) f4: mean pairwise Jaccard over pairs of sessions of different prompts
SUN_FREQUENCY = "sun_frequency"  # (blocks, channels) f4: fraction of sessions where Sun et al.'s rule marks the channel
SUN_HOLDS = "sun_holds"  # (n, blocks) bool: Sun et al.'s rule marks at least one channel in that session and block
MAX_OVER_MEDIAN = "max_over_median"  # (n, blocks) f4: largest over steps of max |x| / median |x|
STREAM_DATASETS = (
    FREQUENCY, MEAN_ABS_MEAN, MEAN_ABS_STD, TOP_CHANNELS, JACCARD_SEEDS, JACCARD_PROMPTS,
    SUN_FREQUENCY, SUN_HOLDS, MAX_OVER_MEDIAN,
)
