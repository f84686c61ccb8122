"""Record your own pipeline object with MassiveLens, read the session back, and zero its massive channels.

    python examples/record_your_pipeline.py [MODEL]   # MODEL: a hub id or pipeline folder (default: the embedded model)

Any pipeline of a supported transformer class works however you built it: LoRA loaded, offloaded,
quantized, scheduler swapped. Runs in seconds on a CPU with the embedded model.
"""
import sys

import numpy as np
import torch
from diffusers import DiffusionPipeline

import massivelens
from massivelens.resources import EMBEDDED_MODEL

model = sys.argv[1] if len(sys.argv) > 1 else str(EMBEDDED_MODEL)
pipe = DiffusionPipeline.from_pretrained(model, dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
call = dict(prompt="a large red circle on a white background at center", height=64, width=64, num_inference_steps=20,
            guidance_scale=4.0, max_sequence_length=20)  # the default embedded model's settings (Flux2KleinPipeline)

# 1. A drop-in for pipe(...): the same output object, plus a session file.
steps_seen = []
output = massivelens.record(pipe, "example.h5", k=8, generator=torch.Generator("cpu").manual_seed(0),
                            callback_on_step_end=lambda p, i, t, d: steps_seen.append(i) or {}, **call)
output.images[0].save("example.png")
print(f"recorded {len(steps_seen)} steps; your callback ran at every one")

# 2. The session, read lazily.
with massivelens.open_session("example.h5") as s:
    top = s.massive("topk", k=2)
    ratio = s.max_abs().max(axis=(0, 2)) / s.median_abs().max(axis=0)  # per block, over steps
    print(f"{s.call['pipeline']['class']} on {s.info['transformer_class']}, grid {s.grid}, steps {s.steps_done}")
    for (block, channels), r in zip(top.items(), ratio):
        print(f"  {block:<10} top channels {channels}  max/median {r:.0f}")

# 3. The paper's critical claim on your pipe: zero the top-2 channels of every block.
with massivelens.zero_channels(pipe, top):
    zeroed = pipe(generator=torch.Generator("cpu").manual_seed(0), **call).images[0]
zeroed.save("example-zeroed.png")
change = np.abs(np.asarray(zeroed, float) - np.asarray(output.images[0], float)).mean()
print(f"zeroing 2 channels per block changed the image by {change:.1f} grey levels on average (example-zeroed.png)")
