"""CLIP similarities for transport results: how much each image matches the source and target
prompts, and the reference image. Any CLIPModel folder or hub id works; it is loaded once."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ModelLoadError


class ClipScorer:
    """Cosine similarities of CLIP embeddings (projected, L2-normalised), in [-1, 1]."""

    def __init__(self, model: str, device: str | None = None):
        from transformers import CLIPModel, CLIPProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.model = CLIPModel.from_pretrained(model).to(self.device).eval()
            self.processor = CLIPProcessor.from_pretrained(model)
        except Exception as exc:  # transformers raises OSError, ValueError and HTTP errors here
            text = str(exc).strip().splitlines()
            raise ModelLoadError(f"cannot load CLIP model {model!r}: {text[0][:200] if text else type(exc).__name__}") from exc

    @torch.inference_mode()
    def _image(self, image: np.ndarray) -> torch.Tensor:
        """An image's embedding; a video's (F, H, W, 3) is the normalised mean of its frames' embeddings."""
        frames = list(image) if image.ndim == 4 else [image]
        pixels = self.processor(images=frames, return_tensors="pt")["pixel_values"].to(self.device)
        return _unit(_unit(self.model.get_image_features(pixel_values=pixels)).mean(dim=0, keepdim=True))

    @torch.inference_mode()
    def _text(self, text: str) -> torch.Tensor:
        tokens = self.processor(text=[text], return_tensors="pt", padding=True, truncation=True).to(self.device)
        return _unit(self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]))

    def scores(self, image: np.ndarray, source_prompt: str, target_prompt: str, reference: np.ndarray | None = None) -> dict:
        """Similarity of `image` to each prompt (an empty source prompt is skipped) and to the reference."""
        embedding = self._image(image)
        out = {"target_prompt": _cosine(embedding, self._text(target_prompt))}
        if source_prompt:
            out["source_prompt"] = _cosine(embedding, self._text(source_prompt))
        if reference is not None:
            out["reference"] = _cosine(embedding, self._image(reference))
        return out


def _unit(features) -> torch.Tensor:
    features = getattr(features, "pooler_output", features)  # newer transformers may return a model output
    return torch.nn.functional.normalize(features.float(), dim=-1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())
