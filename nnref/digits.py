"""Digits as people bring them: a drawing on a canvas, a photograph of ink on paper — prepared the way MNIST's
digits were (LeCun et al.), so that a model trained on MNIST sees what it was trained on.

MNIST's preparation: the digit size-normalised into a 20 × 20 box keeping its aspect ratio (anti-aliased, so it
has grey levels), then placed in 28 × 28 with its centre of mass at the centre.  Measured on the 60,000 training
images (``nnref.data``): the longer side of the ink is 20 pixels in 99.98% of them, the centre of mass lies at
pixel (14.0, 14.0) (± 0.29), strokes are about 3 pixels wide.

:func:`prepare_digit` does that to any picture: grayscale; which way round the ink is, decided from the whole
picture (dark ink on light paper is inverted, a grey sheet is background, not ink); the background's unevenness and
the paper's grain removed; the contrast set so the ink is 1; the ink cropped; a thin pen's strokes thickened to
MNIST's width; scaled into 20 × 20; moved so its centre of mass is at the centre.  :func:`load_picture` decodes what
people upload — PNG with an alpha channel (a transparent canvas), EXIF-rotated photographs, 16-bit scans, a
4000 × 3000 photo (decoded smaller), and refuses, with a message, what is not an image or would take too much
memory (a decompression bomb).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as TF

from .data import MEAN, STD, DataError

__all__ = [
    "NoDigitFound",
    "BadPicture",
    "load_picture",
    "prepare_digit",
    "to_row",
    "to_byte_row",
    "IMAGE_SUFFIXES",
    "MAX_BYTES",
    "MAX_PIXELS",
]

#: What a picture may be at most: its file, and its pixels (a 12-megapixel photo is 12e6).
MAX_BYTES, MAX_PIXELS = 32 * 2**20, 50_000_000
#: The pictures ``nnref predict`` reads from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: The working size: a larger picture is made this small (longer side) before anything else.
WORKING = 512
BOX, SIDE, CENTRE, STROKE = 20, 28, 14.0, 2.9  # MNIST's box, image, centre of mass and stroke width, in pixels


class BadPicture(DataError):
    """A file that is not a picture nnref can read, or one too large to read safely."""


class NoDigitFound(DataError):
    """A picture without ink: empty, blank, or one even colour."""


# --------------------------------------------------------------------------------------------------
# Decoding what people upload
# --------------------------------------------------------------------------------------------------
def load_picture(source, name: str | None = None) -> torch.Tensor:
    """A picture file (a path, or its bytes) as grayscale (H, W) float32 in [0, 1], upright (EXIF), at most
    :data:`WORKING` pixels on its longer side.  A transparent background (alpha) becomes the opposite of the
    strokes' colour, so the strokes stay ink whatever colour they were drawn in."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "the picture")
    data = _read(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise BadPicture(
                        f"{name} is {im.width} × {im.height} pixels: more than the {MAX_PIXELS / 1e6:.0f} "
                        "million nnref reads (a decompression bomb, or a scan far larger than a digit)"
                    )
                im.draft("L" if im.mode in ("L", "RGB") else im.mode, (WORKING * 2, WORKING * 2))  # JPEG: decode small
                im = ImageOps.exif_transpose(im)
                im.thumbnail((WORKING * 2, WORKING * 2))  # memory bounded before the exact float work below
                gray = _grayscale(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadPicture(f"{name} would decode to too many pixels ({exc}): refused") from None
    except UnidentifiedImageError:  # its message is the repr of a BytesIO: a person needs the file's name instead
        raise BadPicture(
            f"{name} is not a picture nnref can read: it reads PNG, JPEG, BMP, GIF, TIFF and WebP files"
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise BadPicture(f"{name} is not a picture nnref can read: the file is damaged or incomplete") from None
    return _shrink(gray, WORKING)


def _read(source, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise BadPicture(f"image {path} does not exist (or is not a file)")
        if path.stat().st_size > MAX_BYTES:
            raise BadPicture(
                f"{name} is {path.stat().st_size / 2**20:.0f} MiB: more than the "
                f"{MAX_BYTES / 2**20:.0f} MiB nnref reads"
            )
        data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise BadPicture(
            f"{name} is {len(data) / 2**20:.0f} MiB: more than the {MAX_BYTES / 2**20:.0f} MiB nnref reads"
        )
    if not data:
        raise BadPicture(f"{name} is empty (0 bytes)")
    return data


def _grayscale(im) -> torch.Tensor:
    """Any PIL mode as gray (H, W) in [0, 1]; 16-bit and float pictures keep their depth; alpha handled."""
    import numpy as np

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 65535.0)
    if im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return torch.from_numpy((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGB" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 0.9:  # see-through pixels: put the strokes on the opposite of their own colour
            opaque = gray[alpha > 0.5]
            behind = 1.0 if opaque.size == 0 or opaque.mean() < 0.5 else 0.0
            gray = gray * alpha + behind * (1 - alpha)
        return torch.from_numpy(np.ascontiguousarray(gray))
    return torch.from_numpy(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)


def _shrink(gray: torch.Tensor, side: int) -> torch.Tensor:
    h, w = gray.shape
    if max(h, w) <= side:
        return gray.contiguous()
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return TF.interpolate(gray[None, None], size=size, mode="area")[0, 0]


# --------------------------------------------------------------------------------------------------
# MNIST's preparation
# --------------------------------------------------------------------------------------------------
def prepare_digit(picture, ink: str = "auto") -> torch.Tensor:
    """The 28 × 28 MNIST-style image (float32 in [0, 1], light ink on black) of a picture: a path, its bytes, a PIL
    image, or a gray (H, W) tensor in [0, 1].  ``ink``: "auto" decides from the picture whether the ink is dark on
    light or light on dark; "light" or "dark" says so.  Raises :class:`NoDigitFound` for a picture without ink
    and :class:`BadPicture` for a file that is not a picture nnref can read."""
    if ink not in ("auto", "light", "dark"):
        raise ValueError(f"ink must be auto, light or dark, got {ink!r}")
    gray = _as_gray(picture)
    ink = _ink(gray, ink)
    ink = _crop(ink)
    ink = _thicken(ink)
    box = _into_box(ink)
    return _centre(box)


def to_row(image28: torch.Tensor) -> torch.Tensor:
    """A prepared 28 × 28 image as the normalised row (1, 784) nnref's models take (``nnref.data.normalize``)."""
    return ((image28.reshape(1, 784) - MEAN) / STD).float()


def to_byte_row(image28: torch.Tensor) -> torch.Tensor:
    """A prepared 28 × 28 image in [0, 1] as MNIST's own uint8 row (1, 784): what byte-KNN records are queried with."""
    return (image28.reshape(1, 784).clamp(0, 1) * 255).round().to(torch.uint8)


def _as_gray(picture) -> torch.Tensor:
    if isinstance(picture, torch.Tensor):
        if picture.dim() != 2:
            raise BadPicture(f"a picture tensor must be gray (H, W), got shape {tuple(picture.shape)}")
        return _shrink(picture.float().clamp(0, 1), WORKING)
    if hasattr(picture, "mode") and hasattr(picture, "size"):  # a PIL image
        return _shrink(_grayscale(picture), WORKING)
    return load_picture(picture)


def _box_filter(x: torch.Tensor, k: int, op: str, before: int | None = None) -> torch.Tensor:
    """A separable k × k max (or min) filter over (H, W): two 1-D passes.  The window of pixel i spans
    i − before … i − before + k − 1 (default: centred)."""
    if op == "min":
        return -_box_filter(-x, k, "max", before)
    x = x[None, None]
    pad = k // 2 if before is None else before
    x = TF.max_pool2d(TF.pad(x, (pad, k - 1 - pad, 0, 0), mode="replicate"), (1, k), stride=1)
    x = TF.max_pool2d(TF.pad(x, (0, 0, pad, k - 1 - pad), mode="replicate"), (k, 1), stride=1)
    return x[0, 0]


def _opening(x: torch.Tensor, k: int) -> torch.Tensor:
    """What is left of x after a k × k minimum then the maximum over the reflected window: thin things vanish,
    everything at least k wide keeps its place and shape."""
    return _box_filter(_box_filter(x, k, "min", k // 2), k, "max", k - 1 - k // 2)


def _ink(gray: torch.Tensor, polarity: str = "auto") -> torch.Tensor:
    """How much ink each pixel holds, 0 (background) to 1 (the digit's strokes)."""
    if polarity == "auto":  # the ink is what stands out from the page (its median), darker or lighter
        background = gray.median()
        darker, lighter = (background - gray).clamp_min(0).mean(), (gray - background).clamp_min(0).mean()
        polarity = "dark" if darker > lighter else "light"
    ink = 1 - gray if polarity == "dark" else gray
    # the page itself — its light and shadow — is what is left when strokes (narrower than a quarter of the
    # picture) are opened away: a minimum filter, then a maximum filter, on a 64-pixel copy (light varies slowly)
    small = _shrink(ink, 64)
    k = max(3, (max(small.shape) // 4) | 1)
    page = _opening(small, k)
    page = TF.interpolate(page[None, None], size=ink.shape, mode="bilinear", align_corners=False)[0, 0]
    residual = ink - page
    peak = float(residual.max())
    if peak < 0.08:
        raise NoDigitFound(
            "no digit found: the picture is blank (its darkest and lightest parts differ by less than 8%)"
        )
    strong = residual[residual > 0.5 * peak]
    residual = residual / (float(strong.quantile(0.9)) if strong.numel() > 1 else peak)  # the strokes become 1
    floor = _grain(residual)
    ink = ((residual - floor) / (1 - floor)).clamp(0, 1)
    if float((ink > 0.5).float().sum()) < 4:
        raise NoDigitFound("no digit found: the picture holds no stroke, only specks")
    return ink


def _grain(residual: torch.Tensor) -> float:
    """The paper's grain: the level below which a pixel is background — the median of what is left after the page
    is taken away, plus 5 times its median deviation (most pixels are page, scattered around it); 0 for a clean
    picture such as an MNIST row."""
    median = residual.median()
    spread = (residual - median).abs().median()
    return float(min(0.5, max(0.0, median + 5 * spread)))


def _crop(ink: torch.Tensor) -> torch.Tensor:
    """The ink's bounding box, less any speck apart from the digit: a run of rows (or columns) with ink, cut off
    from the rest by empty ones and holding under 1% of the ink, does not widen the box."""

    def span(profile: torch.Tensor) -> tuple[int, int]:
        filled = (profile > 0).int()
        starts = ((filled[1:] - filled[:-1]) == 1).nonzero().flatten() + 1
        ends = ((filled[1:] - filled[:-1]) == -1).nonzero().flatten()
        starts = torch.cat([torch.tensor([0]), starts]) if filled[0] else starts
        ends = torch.cat([ends, torch.tensor([len(filled) - 1])]) if filled[-1] else ends
        runs = [(int(a), int(b)) for a, b in zip(starts, ends)]
        total = float(profile.sum())
        while len(runs) > 1 and float(profile[runs[0][0] : runs[0][1] + 1].sum()) < 0.01 * total:
            runs.pop(0)
        while len(runs) > 1 and float(profile[runs[-1][0] : runs[-1][1] + 1].sum()) < 0.01 * total:
            runs.pop()
        return runs[0][0], runs[-1][1]

    # a lone pixel of grain is no ink: the box is taken from the ink that survives a 2 × 2 opening
    solid = _opening((ink > 0.3).float(), 2) * ink
    if float(solid.sum()) == 0:
        solid = ink
    (r0, r1) = span(solid.sum(1))
    (c0, c1) = span(solid[r0 : r1 + 1].sum(0))
    # then the faint edge of the strokes, which the opening left out: grow while the next row or column has ink
    h, w = ink.shape
    grown = True
    while grown:
        grown = False
        for side in range(4):
            r, c = (
                (r0 - 1, None)
                if side == 0
                else (r1 + 1, None)
                if side == 1
                else (None, c0 - 1)
                if side == 2
                else (None, c1 + 1)
            )
            if r is not None and 0 <= r < h and float(ink[r, c0 : c1 + 1].max()) > 0.05:
                r0, r1, grown = min(r0, r), max(r1, r), True
            if c is not None and 0 <= c < w and float(ink[r0 : r1 + 1, c].max()) > 0.05:
                c0, c1, grown = min(c0, c), max(c1, c), True
    return ink[r0 : r1 + 1, c0 : c1 + 1]


def _stroke_width(ink: torch.Tensor) -> float:
    """≈ 2 · area / perimeter of the ink (a long stroke of width w has area ≈ w·L and perimeter ≈ 2L)."""
    mask = (ink > 0.5).float()
    padded = TF.pad(mask, (1, 1, 1, 1))
    inner = padded[1:-1, 1:-1] * padded[:-2, 1:-1] * padded[2:, 1:-1] * padded[1:-1, :-2] * padded[1:-1, 2:]
    edge = float((mask - inner).sum())
    return 2 * float(mask.sum()) / max(edge, 1.0)


def _thicken(ink: torch.Tensor) -> torch.Tensor:
    """A thin pen's strokes widened to MNIST's (about 3 of the 20 pixels of the box) before scaling."""
    target = STROKE * max(ink.shape) / BOX
    width = _stroke_width(ink)
    if width >= 0.6 * target:
        return ink
    k = min(31, int(round(target - width)) | 1)
    if k <= 1:
        return ink
    grown = _box_filter(TF.pad(ink, (k, k, k, k)), k, "max")  # room to grow on every side
    rows, cols = (grown > 0).any(1).nonzero().flatten(), (grown > 0).any(0).nonzero().flatten()
    return grown[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _into_box(ink: torch.Tensor) -> torch.Tensor:
    """Scaled so its longer side is 20 pixels, keeping the aspect ratio; anti-aliased (area-averaged)."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = ink[None, None]
    if scale < 1:
        out = TF.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    else:
        out = TF.interpolate(x, size=size, mode="bilinear", align_corners=False)
    out = out[0, 0].clamp(0, 1)
    return out / out.max().clamp_min(1e-6)


def _centre(box: torch.Tensor) -> torch.Tensor:
    """The box placed in 28 × 28 with its centre of mass at pixel (14, 14), as MNIST's are."""
    h, w = box.shape
    mass = box.sum()
    cy = float((box.sum(1) * torch.arange(h)).sum() / mass)
    cx = float((box.sum(0) * torch.arange(w)).sum() / mass)
    top = min(max(int(round(CENTRE - cy)), 0), SIDE - h)
    left = min(max(int(round(CENTRE - cx)), 0), SIDE - w)
    image = torch.zeros(SIDE, SIDE)
    image[top : top + h, left : left + w] = box
    return image
