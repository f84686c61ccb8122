"""`python main.py model-card`: an embedded model's card, measured rather than written by hand.

Training recipe and loss curve (from the files training leaves in the model folder), the world
reader's accuracy on held-out captions, the activation statistics of a batch of held-out
captions: max/median ratio, top channels and how consistent they are across prompts, seeds,
steps and tokens, and whether Sun et al.'s rule (> 100 and > 1000x median) is met; and, for a
model whose training left snapshots.jsonl, how those statistics grew over training.
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

from massivelens.engine import defaults

NAME = "model-card"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="measure the embedded model and write its MODEL_CARD.md")
    p.add_argument("--model", type=Path, default=Path(defaults.DEFAULT_MODEL))
    p.add_argument("--prompts", type=int, default=12, help="held-out captions for the activation statistics")
    p.add_argument("--seeds", type=int, default=2, help="seeds per caption")
    p.add_argument("--eval", type=int, default=200, help="held-out captions for the accuracy table")
    p.add_argument("--work", type=Path, help="keep the statistics batch here (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (1: seconds per image on one core)")
    p.add_argument("--variants", type=Path, help="variants.json of bench/growth_variants.py: the training variants "
                                                  "tried on this architecture, tabulated in the growth section")


def run(args: argparse.Namespace) -> int:
    from .console import quiet_libraries

    quiet_libraries()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = args.model
    config = json.loads((model / "train_config.json").read_text())
    accuracy = _accuracy(model, args.eval)
    figures = _loss_curve(model, int(config["args"]["batch"]))
    growth = growth_figures(model)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        stats = activation_statistics(model, args.prompts, args.seeds, work)
    variants = json.loads(args.variants.read_text()) if args.variants else None
    card = render(config, accuracy, stats, figures, args) + growth_section(model, growth, saved_statistics(model), variants)
    (model / "MODEL_CARD.md").write_text(card)
    print(f"wrote {model / 'MODEL_CARD.md'}")
    return 0


def _accuracy(model: Path, n: int) -> dict[str, float]:
    from diffusers import DiffusionPipeline

    from massivelens.engine.shapes.evaluate import evaluate

    settings = defaults.model_defaults(str(model))
    pipe = DiffusionPipeline.from_pretrained(model)
    return evaluate(pipe, n, steps=settings["steps"], cfg=settings["guidance"])


def _loss_curve(model: Path, batch: int) -> list[str]:
    """The transformer's training and held-out loss over its whole life: a resumed run restarts its step
    count, so later segments are shifted to continue the earlier ones. (The VAE phases log reader errors
    in the held-out column, so they stay in train_log.csv only.)"""
    from massivelens.gui.figures import line_figure

    rows = [r for r in csv.DictReader((model / "train_log.csv").open()) if r["phase"] == "dit"]
    offset, last, steps = 0, 0, []
    for r in rows:
        step = int(r["step"])
        if step < last:
            offset += last
        last = step
        steps.append(offset + step)
    held = [(x, float(r["heldout_loss"])) for x, r in zip(steps, rows) if r["heldout_loss"]]
    series = {
        f"train (batch of {batch})": (steps, [float(r["loss"]) for r in rows], None),
        "held-out (256 images)": ([x for x, _ in held], [y for _, y in held], None),
    }
    paths = line_figure(series, "Transformer training loss (rectified flow)", "step", "loss", model / "loss_curve")
    return [p.name for p in paths]


def wall_minutes(log: Path) -> float:
    """Training wall time over all phases and resumed runs (each run's log clock restarts at zero)."""
    total, last = 0.0, 0.0
    for row in csv.DictReader(log.open()):
        elapsed = float(row["elapsed_s"])
        if elapsed < last:
            total += last
        last = elapsed
    return (total + last) / 60.0


def activation_statistics(model: Path, prompts: int, seeds: int, work: Path) -> dict:
    """Record a batch of held-out captions (full hidden states at the middle step) and summarise it."""
    from massivelens.engine.batch import BatchRequest, process_state, run_batch
    from massivelens.engine.jobs import RecordRequest
    from massivelens.engine.shapes.world import heldout_samples

    captions = [caption for caption, _, _ in heldout_samples(prompts, offset=10_000)]
    work.mkdir(parents=True, exist_ok=True)
    prompt_file = work / "prompts.txt"
    prompt_file.write_text("\n".join(captions) + "\n")
    steps = defaults.model_defaults(str(model))["steps"]
    settings = RecordRequest(prompt="", out=work, model=str(model), k=4, hidden_steps=(steps // 2,),
                             hidden_blocks=tuple(_blocks(model)))
    outcome = run_batch(BatchRequest(prompt_file, work / "batch", settings, seeds), process_state("cpu"))
    sessions = [work / "batch" / entry.file for entry in outcome.summary.sessions]
    return {"summary": outcome.summary, "steps": step_consistency(sessions), "tokens": token_consistency(sessions)}


def _blocks(model: Path) -> list[str]:
    from massivelens.engine.core.architectures import adapter_for
    from massivelens.engine.loading import ModelSpec, load_pipeline

    pipe = load_pipeline(ModelSpec(str(model)))
    return [name for name, _, _ in adapter_for(pipe.transformer).blocks(pipe.transformer)]


def step_consistency(sessions: list[Path]) -> np.ndarray:
    """Per image block: mean Jaccard between each step's top-k set and the session's overall top-k."""
    from massivelens.sessions.massive import top_channels
    from massivelens.sessions.reader import open_session

    values = []
    for path in sessions:
        with open_session(path) as s:
            per_step = s.top_channels()
            overall = top_channels(s.mean_abs("image").mean(axis=0), s.k)
        values.append(np.mean([[_jaccard(step[b], overall[b]) for b in range(len(overall))] for step in per_step], axis=0))
    return np.mean(values, axis=0)


def token_consistency(sessions: list[Path]) -> np.ndarray:
    """Per image block: share of image tokens whose largest |x| is in the block's top-1 channel."""
    from massivelens.sessions.reader import open_session

    values = []
    for path in sessions:
        with open_session(path) as s:
            row = []
            for b, block in enumerate(s.blocks("image")):
                states, _ = s.hidden("image", block)
                top = int(np.argmax(s.mean_abs("image").mean(axis=0)[b]))
                row.append(float(np.mean(np.abs(states[0]).argmax(axis=1) == top)))
            values.append(row)
    return np.mean(values, axis=0)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = set(map(int, a)), set(map(int, b))
    return len(a & b) / len(a | b)


DESCRIPTIONS = {
    "flux": "A small diffusers `FluxPipeline` (FluxTransformer2DModel with double- and single-stream blocks, "
            "a CLIP and a T5 text encoder, an AutoencoderKL) trained from scratch by "
            "`python -m massivelens.engine.shapes.train`",
    "flux2": "A small diffusers `Flux2KleinPipeline` (FLUX.2-klein's architecture: Flux2Transformer2DModel with "
             "double- and single-stream blocks and no pooled-text modulation, a 27-layer Qwen3 text encoder whose "
             "hidden states 9, 18 and 27 are stacked, an AutoencoderKLFlux2 with 2x2 patchified, batch-norm "
             "normalised latents) trained from scratch by `python -m massivelens.engine.shapes.train --arch flux2`",
}


def render(config: dict, accuracy: dict, stats: dict, figures: list[str], args: argparse.Namespace) -> str:
    """The card as Markdown."""
    summary = stats["summary"]
    params = config["parameters"]
    arch = config.get("arch", "flux")
    vae_from = config["args"].get("vae_from", "None")
    lines = [
        f"# The embedded model: {args.model.name}",
        "",
        DESCRIPTIONS[arch] + " on the synthetic Shapes world of `engine/shapes/world.py`. Generated by "
        f"`python main.py model-card --model {args.model} --prompts {args.prompts} --seeds {args.seeds} --eval {args.eval}"
        + (f" --threads {args.threads}" if args.threads else "")
        + (f" --variants {args.variants}" if args.variants else "") + "`.",
        *(["", f"Its VAE's encoder and decoder start from the trained VAE of `{vae_from}` (the same module layout; "
               "only the batch-norm latent statistics are new, measured on the training images); its VAE and "
               "decoder phases were skipped, so the transformer and text encoder are what this run trained."]
          if vae_from != "None" else []),
        "",
        "## Training recipe",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} parameters | {value:,} |" for name, value in params.items()],
        f"| image-token grid | {config['token_grid'][0]} x {config['token_grid'][1]} |",
        f"| transformer steps trained | {config.get('dit_steps')} |",
        f"| training wall time, all phases | {wall_minutes(args.model / 'train_log.csv'):.0f} min |",
        *[f"| {name} | {value} |" for name, value in config["args"].items() if name not in ("out", "log", "resume")],
        *[f"| model: {name} | {value} |" for name, value in config["config"].items()],
        "",
        f"![loss curve]({figures[0]})",
        "",
        f"## Quality on {args.eval} held-out captions (world reader, classifier-free guidance)",
        "",
        "| attribute | accuracy |",
        "|---|---|",
        *[f"| {name} | {value:.3f} |" for name, value in accuracy.items()
          if name not in ("mask_iou", "seconds_per_image", "cpu_seconds_per_image")],
        f"| mask IoU | {accuracy['mask_iou']:.3f} |",
        f"| seconds per image | {accuracy['seconds_per_image']:.2f} |",
        *([f"| CPU seconds per image | {accuracy['cpu_seconds_per_image']:.2f} |"]
          if "cpu_seconds_per_image" in accuracy else []),
        "",
        f"## Activation statistics ({len(summary.prompts)} held-out captions x {args.seeds} seeds, k = {summary.k})",
        "",
        "Consistency: *prompts* = mean Jaccard of the top-k sets between captions; *seeds* = between seeds of "
        "one caption; *steps* = between each step's top-k and the run's; *tokens* = share of image tokens whose "
        "largest |x| sits in the block's top-1 channel (middle step). Sun et al.: share of runs where a channel "
        "exceeds 100 and 1000x the block's median.",
        "",
        "| block | stream | max/median | top channels (frequency) | prompts | seeds | steps | tokens | Sun et al. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stream, data in summary.streams.items():
        for b, block in enumerate(data.blocks):
            if np.isnan(data.frequency[b]).all():
                continue
            order = np.lexsort((-data.mean_abs_mean[b], -data.frequency[b]))[:4]
            top = ", ".join(f"{c} ({data.frequency[b, c]:.2f})" for c in order)
            steps = f"{stats['steps'][b]:.2f}" if stream == "image" else "-"
            tokens = f"{stats['tokens'][b]:.2f}" if stream == "image" else "-"
            lines.append(
                f"| {block} | {stream} | {np.nanmean(data.max_over_median[:, b]):.1f} | {top} | "
                f"{np.nanmean(data.jaccard_prompts[b]):.2f} | {np.nanmean(data.jaccard_seeds[:, b]):.2f} | "
                f"{steps} | {tokens} | {np.nanmean(data.sun_holds[:, b]):.2f} |"
            )
    return "\n".join(lines) + "\n"


def growth_figures(model: Path) -> list[str]:
    """Per block, max/median and the top-1 channel's token share against training step (EMA weights)."""
    from massivelens.engine.shapes.snapshots import SNAPSHOT_FILE, read
    from massivelens.gui.figures import line_figure

    records = read(model / SNAPSHOT_FILE)
    if not records:
        return []
    steps = [r["step"] for r in records]
    names = [b["block"] for b in records[0]["blocks"]]
    paths = []
    for key, title, y_label, out, unit in (
        ("max_over_median", "Image tokens: max |x| / median |x| during training", "max / median", "growth_ratio", False),
        ("top_share", "Image tokens whose largest |x| is the top-1 channel", "share of tokens", "growth_top_share", True),
    ):
        series = {name: (steps, [r["blocks"][b][key] for r in records], None) for b, name in enumerate(names)}
        paths += line_figure(series, title, "DiT training step", y_label, model / out, unit_interval=unit)
    return [p.name for p in paths if p.suffix == ".png"]


def saved_statistics(model: Path) -> list[dict] | None:
    """The snapshot statistics of the model's saved weights (None without snapshots to compare with)."""
    from diffusers import DiffusionPipeline

    from massivelens.engine.shapes.snapshots import SNAPSHOT_FILE, measure_pipeline

    if not (model / SNAPSHOT_FILE).exists():
        return None
    return measure_pipeline(DiffusionPipeline.from_pretrained(model))


def growth_section(model: Path, figures: list[str], saved: list[dict] | None = None,
                   variants: list[dict] | None = None) -> str:
    """The card's section on how massive activations grew during training (or why there is none).

    saved: the saved weights measured on the snapshot batch (measure_pipeline), a last column that shows
    whether the snapshots come from the run that produced these weights; train_config.json's "snapshots"
    says where they come from when they do not. variants: bench/growth_variants.py's rows.
    """
    from massivelens.engine.shapes.snapshots import CAPTIONS, SEEDS, SNAPSHOT_FILE, SUN_RELATIVE, T, read

    records = read(model / SNAPSHOT_FILE)
    lines = ["", "## How massive activations grew during training", ""]
    if not records:
        lines.append("This model's training kept no activation snapshots (they were added after it was trained).")
        return "\n".join(lines) + "\n"
    first, last = records[0], records[-1]
    config = model / "train_config.json"
    source = json.loads(config.read_text()).get("snapshots") if config.exists() else None
    lines += [
        f"Every few hundred DiT steps training ran the transformer (EMA weights, as saved) on a fixed batch: "
        f"{CAPTIONS} held-out captions x {SEEDS} noise seeds, their images noised to t = {T}. Per block, image "
        "tokens' max |x| / median |x| (mean over the batch), the top-1 channel (largest mean |x|), the share of "
        "image tokens whose largest |x| sits in it, and the share of samples meeting Sun et al.'s rule "
        f"(> 100 and > 1000x median). `{SNAPSHOT_FILE}` holds every snapshot, of the live weights too.",
        *(["", f"Where the snapshots come from: {source}"] if source else []),
        *(["", "The last two columns measure the saved weights on the same batch."] if saved else []),
        "",
        *[f"![{name}]({name})" for name in figures],
        "",
        f"| block | max/median at step {first['step']} | at step {last['step']} | growth | top channel | "
        f"top-1 share at {first['step']} | at {last['step']} | Sun et al. at {last['step']} |"
        + (" saved weights: max/median | top channel, share |" if saved else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if saved else ""),
    ]
    for i, (a, b) in enumerate(zip(first["blocks"], last["blocks"])):
        row = (f"| {b['block']} | {a['max_over_median']:.1f} | {b['max_over_median']:.1f} | "
               f"x{b['max_over_median'] / a['max_over_median']:.1f} | {b['top_channel']} | "
               f"{a['top_share']:.2f} | {b['top_share']:.2f} | {b['sun']:.2f} |")
        if saved:
            row += f" {saved[i]['max_over_median']:.1f} | {saved[i]['top_channel']}, {saved[i]['top_share']:.2f} |"
        lines.append(row)
    best_step, best = max(((r["step"], b) for r in records for b in r["blocks"]), key=lambda sb: sb[1]["max_over_median"])
    lines += ["", f"Sun et al.'s rule asks for more than {SUN_RELATIVE:.0f}x the median: the largest ratio in any snapshot "
              f"is {best['max_over_median']:.1f} ({best['block']}, step {best_step}), "
              f"{SUN_RELATIVE / best['max_over_median']:.0f}x short of it."]
    return "\n".join(lines + (variants_table(variants) if variants else [])) + "\n"


def variants_table(rows: list[dict]) -> list[str]:
    """The training variants tried (bench/growth_variants.py), and how far the one that grew most got."""
    from massivelens.engine.shapes.snapshots import SUN_RELATIVE

    best = max(rows, key=lambda r: r["max_over_median"])
    lines = ["", "### Training variants", "",
             "Short runs from the same seed, each changing one thing the literature ties to massive activations "
             "(`python bench/growth_variants.py`; held-out flow loss at the end; the block whose max/median grew most, "
             "at the last snapshot):", "",
             "| variant | changes | steps | held-out loss | block | max/median (first -> last) | top-1 share | Sun et al. |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        loss = "-" if r["heldout_loss"] is None else f"{r['heldout_loss']:.4f}"
        lines.append(f"| {r['variant']} | {r['changes']} | {r['steps']} | {loss} | {r['block']} | "
                     f"{r['first_max_over_median']:.1f} -> {r['max_over_median']:.1f} | {r['top_share']:.2f} | {r['sun']:.2f} |")
    lines += ["", f"The variant that grew furthest is {best['variant']} ({best['changes']}): max/median "
              f"{best['max_over_median']:.1f} at {best['block']} after {best['steps']} steps, "
              f"{SUN_RELATIVE / best['max_over_median']:.0f}x short of Sun et al.'s rule."]
    return lines
