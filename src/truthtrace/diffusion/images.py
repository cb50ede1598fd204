"""Image/caption folders for LoRA fine-tuning: ``NAME.png`` (or .jpg, .jpeg, .webp) beside ``NAME.txt``,
or a ``metadata.jsonl`` of ``{"file_name", "text"}`` records (the Hugging Face imagefolder layout).

Images are resized (shorter side) and centre-cropped to ``size`` and scaled to [-1, 1], as the VAE expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from truthtrace.diffusion.pipeline import require_pil
from truthtrace.fileio import parse_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _from_metadata(folder: Path) -> list[tuple[Path, str]]:
    path, pairs = folder / "metadata.jsonl", []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        doc = parse_json(line, f"{path}:{n}")
        if not isinstance(doc, dict) or not isinstance(doc.get("file_name"), str) \
                or not isinstance(doc.get("text"), str):
            raise ValueError(f"{path}:{n}: expected {{'file_name': str, 'text': str}}")
        image = folder / doc["file_name"]
        if image.parent.resolve() != folder.resolve() and folder.resolve() not in image.resolve().parents:
            raise ValueError(f"{path}:{n}: field 'file_name' {doc['file_name']!r} leads outside {folder}")
        pairs.append((image, doc["text"]))
    return pairs


def find_pairs(folder) -> list[tuple[Path, str]]:
    """``[(image path, caption)]`` of a folder, sorted by file name.

    Raises:
        ValueError: naming the file of an image without caption, a malformed metadata line, or an empty folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of image/caption pairs")
    if (folder / "metadata.jsonl").is_file():
        pairs = _from_metadata(folder)
    else:
        pairs = []
        for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            caption = image.with_suffix(".txt")
            if not caption.is_file():
                raise ValueError(f"{image}: no caption file {caption.name} beside it")
            pairs.append((image, caption.read_text(encoding="utf-8").strip()))
    if not pairs:
        raise ValueError(f"{folder}: no images with captions (NAME.png + NAME.txt, or metadata.jsonl)")
    return pairs


def load_image(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """``(3, H, W)`` float32 in [-1, 1]: the image resized on its shorter side and centre-cropped to ``size``.

    Raises:
        ValueError: naming the file when it is not a readable image.
    """
    Image = require_pil()
    height, width = size
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except OSError as err:  # PIL's UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: not a readable image ({err})") from None
    scale = max(height / im.height, width / im.width)
    im = im.resize((max(width, round(im.width * scale)), max(height, round(im.height * scale))), Image.BICUBIC)
    left, top = (im.width - width) // 2, (im.height - height) // 2
    im = im.crop((left, top, left + width, top + height))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0)  # (H, W, 3)
    return x.permute(2, 0, 1).contiguous()


def load_pairs(folder, size: tuple[int, int]) -> tuple[torch.Tensor, list[str]]:
    """``(images (n, 3, H, W) in [-1, 1], captions)`` of a folder (:func:`find_pairs`)."""
    pairs = find_pairs(folder)
    return torch.stack([load_image(p, size) for p, _ in pairs]), [c for _, c in pairs]
