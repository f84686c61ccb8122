"""A plain-diffusers script that makes a session's image again: `python reproduce.py OUT.png`; for a video
session, its frames: `python reproduce.py OUT_DIR` writes OUT_DIR/0000.png ...

The script imports diffusers, torch and numpy only (never MassiveLens). It loads the model the
session names, puts back the scheduler the call ran with, and calls the pipeline with the stored
keyword arguments, array arguments (from `call_inputs.npz` beside it) and generator; the image (or
frames) it saves is then bit-identical on the same machine and library versions. What a session could not
store (a user's callback, LoRA weights loaded into the pipeline) is named in the script.
"""
from __future__ import annotations

import json
import pprint
from pathlib import Path

import numpy as np

from .reader import Session, SessionError

INPUTS_FILE = "call_inputs.npz"
TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def write_reproduction(session: Session, out: Path) -> list[Path]:
    """reproduce.py (and call_inputs.npz when the call had array arguments) in `out`."""
    call = session.call
    if not call:
        raise SessionError(f"{session.path}: written before sessions kept their pipeline call (schema v1); no reproduce.py")
    inputs = session.call_inputs()
    written = [out / "reproduce.py"]
    written[0].write_text(script(session, call, inputs))
    if inputs:
        np.savez(out / INPUTS_FILE, **{name: values for name, (values, _, _) in inputs.items()})
        written.append(out / INPUTS_FILE)
    return written


def script(session: Session, call: dict, inputs: dict[str, tuple[np.ndarray, str, str]]) -> str:
    info, setup = session.info, call.get("pipeline", {})
    scheduler = setup.get("scheduler_class", info["scheduler"])
    output_type = call["kwargs"].get("output_type", call.get("defaults", {}).get("output_type", "pil"))
    what, usage = ("video", "OUT_DIR (frames as OUT_DIR/0000.png ...)") if session.is_video else ("image", "OUT.png")
    lines = [
        f'"""Makes {what} {session.image_index} of {session.images_in_call} of the pipeline call recorded in {session.path.name},',
        f"with plain diffusers (recorded {info.get('created', '')} with {_versions(info)}).",
        f"On the same machine and library versions the {what} is bit-identical. Usage: python reproduce.py {usage}",
        '"""',
        "import json",
        "import sys",
        "from pathlib import Path",
        "",
        "import numpy as np",
        "import torch",
        f"from diffusers import DiffusionPipeline, {scheduler}",
        "from PIL import Image",
        "",
        *_notes(call, setup),
        f"MODEL = {info['model']!r}",
        f"pipe = DiffusionPipeline.from_pretrained(MODEL, dtype=torch.{TORCH_DTYPES.get(setup.get('dtype', info['dtype']), 'float32')})",
        f"pipe.scheduler = {scheduler}.from_config(json.loads({json.dumps(info['scheduler_config'], sort_keys=True)!r}))",
        _placement(setup.get("offload"), setup.get("device", info["device"])),
        *_threads(setup),
        "pipe.set_progress_bar_config(disable=True)",
        "",
        f"kwargs = {_literal(call['kwargs'])}",
        *_input_lines(inputs, call.get("lists", {})),
        *_generator_lines(call.get("generator")),
        "output = pipe(**kwargs)",
        *(_save_frames(session.image_index, output_type) if session.is_video else _save_image(session.image_index, output_type)),
        "",
    ]
    return "\n".join(lines)


def _save_image(index: int, output_type: str) -> list[str]:
    return [
        f"image = (output[0] if isinstance(output, tuple) else output.images)[{index}]",
        *_to_uint8(output_type),
        "Image.fromarray(pixels).save(sys.argv[1] if len(sys.argv) > 1 else 'reproduced.png')",
    ]


def _save_frames(index: int, output_type: str) -> list[str]:
    """A video's frames as numbered PNGs, converted as the session converted them."""
    if output_type == "latent":
        return _to_uint8(output_type)
    convert = {
        "np": "(np.asarray(video) * 255).round().astype(np.uint8)",
        "pt": "(video.detach().float().cpu().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)",
    }.get(output_type, "np.stack([np.asarray(frame.convert('RGB')) for frame in video])")
    return [
        f"video = (output[0] if isinstance(output, tuple) else output.frames)[{index}]",
        f"frames = {convert}",
        "out = Path(sys.argv[1] if len(sys.argv) > 1 else 'reproduced')",
        "out.mkdir(parents=True, exist_ok=True)",
        "for i, frame in enumerate(frames):",
        "    Image.fromarray(frame).save(out / f'{i:04d}.png')",
    ]


def _versions(info: dict) -> str:
    versions = info.get("versions", {})
    return ", ".join(f"{name} {versions[name]}" for name in ("torch", "diffusers", "transformers") if name in versions)


def _literal(value) -> str:
    return pprint.pformat(value, width=110, sort_dicts=True)


def _notes(call: dict, setup: dict) -> list[str]:
    notes = [f"# Not reproduced: {name} ({why})." for name, why in call.get("not_stored", {}).items()]
    if setup.get("lora_adapters") and any(setup["lora_adapters"].values()):
        notes.append(f"# The recorded pipeline had LoRA adapters loaded ({setup['lora_adapters']}): load the same weights here.")
    if setup.get("quantized_weights"):
        notes.append(f"# The recorded transformer had quantized weights ({', '.join(setup['quantized_weights'])}): quantize it the same way here.")
    notes += [f"# {note}" for note in call.get("notes", [])]
    return [*notes, ""] if notes else []


def _placement(offload: str | None, device: str) -> str:
    if offload == "model":
        return f"pipe.enable_model_cpu_offload(device={device!r})"
    return f"pipe.to({device!r})"


def _threads(setup: dict) -> list[str]:
    """CPU reductions split by thread: the same image needs the same thread count."""
    if "cpu_threads" not in setup:
        return []
    return [f"torch.set_num_threads({setup['cpu_threads']})  # as recorded: CPU results depend on the thread count"]


def _input_lines(inputs: dict[str, tuple[np.ndarray, str, str]], lists: dict[str, int]) -> list[str]:
    """Array arguments, read back from call_inputs.npz with their original types."""
    arguments = {name: item for name, item in inputs.items() if item[1] != "generator_state"}
    if not arguments:
        return []
    lines = [f"inputs = np.load(Path(__file__).with_name({INPUTS_FILE!r}))"]
    for name, (_, kind, dtype) in arguments.items():
        value = {
            "tensor": f"torch.from_numpy(inputs[{name!r}]).to(torch.{dtype})",
            "pil": f"Image.fromarray(inputs[{name!r}], {dtype!r})",
        }.get(kind, f"inputs[{name!r}]")
        lines.append(f"kwargs[{name!r}] = {value}" if "." not in name else f"{_list_name(name)}.append({value})")
    for name, count in lists.items():
        lines.insert(1, f"{_list_name(name + '.0')} = []")
        lines.append(f"kwargs[{name!r}] = {_list_name(name + '.0')}")
    return lines


def _list_name(item: str) -> str:
    return f"{item.split('.')[0]}_items"


def _generator_lines(generator) -> list[str]:
    if generator is None:
        return ["# The call had no generator: its noise cannot be drawn again, so the image will differ."]
    items = generator if isinstance(generator, list) else [generator]
    made = ["None" if g is None else f"torch.Generator({g['device']!r}).manual_seed({g['seed']})" for g in items]
    lines = [f"generators = [{', '.join(made)}]"]
    for i, g in enumerate(items):
        if g is not None and not g["fresh"]:  # it had been drawn from before the call: start from its state
            name = "generator" if not isinstance(generator, list) else f"generator.{i}"
            lines.append(f"generators[{i}].set_state(torch.from_numpy(inputs[{name!r}]))")
    lines.append(f"kwargs['generator'] = {'generators' if isinstance(generator, list) else 'generators[0]'}")
    if any(g is not None and not g["fresh"] for g in items):
        lines.insert(0, f"inputs = np.load(Path(__file__).with_name({INPUTS_FILE!r}))")
    return lines


def _to_uint8(output_type: str) -> list[str]:
    """The conversion the session used (diffusers' numpy_to_pil for arrays)."""
    if output_type == "np":
        return ["pixels = (np.asarray(image) * 255).round().astype(np.uint8)"]
    if output_type == "latent":
        return ["raise SystemExit('the recorded call returned latents (output_type=\"latent\"): there is no image to save')"]
    if output_type == "pt":
        return ["pixels = (image.detach().float().cpu().permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)"]
    return ["pixels = np.asarray(image.convert('RGB'))"]
