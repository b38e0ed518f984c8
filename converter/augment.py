"""Camera-like augmentation of 48x48 grey faces, mixup/cutmix, and a seeded, resumable data order."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraAugment:
    """What a room camera does to a face, as ranges and per-face probabilities.

    Geometry is one affine warp per face (reflected border): crop scale, shift (as a
    share of the side), aspect ratio (width over height), rotation and a mirror flip.
    Then, each with its own probability: low light with gamma, contrast, blur, sensor
    noise, a JPEG re-encode and a partial occlusion (a grey or dark box)."""

    scale: tuple[float, float] = (0.8, 1.2)
    shift: float = 0.2
    aspect: tuple[float, float] = (0.8, 1.25)
    rotate_deg: float = 10.0
    flip: float = 0.5
    p_light: float = 0.4
    light: tuple[float, float] = (0.35, 1.0)
    gamma: tuple[float, float] = (0.7, 1.5)
    contrast: tuple[float, float] = (0.7, 1.3)
    p_blur: float = 0.25
    blur_sigma: tuple[float, float] = (0.4, 1.4)
    p_noise: float = 0.3
    noise_std: tuple[float, float] = (2.0, 10.0)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (25, 90)
    p_occlude: float = 0.3
    occlude_side: tuple[float, float] = (0.15, 0.4)

    def __post_init__(self) -> None:
        for name in ("flip", "p_light", "p_blur", "p_noise", "p_jpeg", "p_occlude"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augmentation {name} must be a probability in [0, 1]")
        for name in ("scale", "aspect", "light", "gamma", "contrast", "blur_sigma",
                     "noise_std", "jpeg_quality", "occlude_side"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"augmentation {name} must be a range 0 < low <= high")


def _check_face(face: np.ndarray) -> None:
    if face.ndim != 2 or face.dtype != np.uint8:
        raise ValueError(f"a face must be uint8 (H, W) grey, got {face.dtype} {face.shape}")


def warp_geometry(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """Crop scale, shift, aspect ratio, rotation and flip as one affine warp; same shape."""
    import cv2

    h, w = face.shape
    scale = rng.uniform(*cfg.scale)
    aspect = math.exp(rng.uniform(math.log(cfg.aspect[0]), math.log(cfg.aspect[1])))
    sx, sy = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    flip = -1.0 if rng.random() < cfg.flip else 1.0
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * (w, h)
    cos, sin = math.cos(angle), math.sin(angle)
    # output = R @ diag(sx * flip, sy) @ (input - c) + c + t
    a = np.array([[cos * sx * flip, -sin * sy], [sin * sx * flip, cos * sy]])
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    m = np.hstack([a, (c - a @ c + (tx, ty))[:, None]])
    return cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def light_and_gamma(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """Dim the face (a low-light gain), bend its tone curve (gamma) and its contrast."""
    x = face.astype(np.float32) / 255.0
    x = np.power(x, rng.uniform(*cfg.gamma))
    mean = float(x.mean())
    x = (x - mean) * rng.uniform(*cfg.contrast) + mean
    x = x * rng.uniform(*cfg.light)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blur(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """Gaussian blur: defocus or motion of a cheap lens."""
    import cv2

    return cv2.GaussianBlur(face, (0, 0), sigmaX=rng.uniform(*cfg.blur_sigma))


def sensor_noise(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """Gaussian read noise plus shot noise that grows with the grey level."""
    x = face.astype(np.float32)
    std = rng.uniform(*cfg.noise_std)
    noise = rng.normal(0.0, 1.0, size=x.shape).astype(np.float32)
    x = x + noise * std * np.sqrt(0.3 + 0.7 * x / 255.0)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def jpeg(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """Encode and decode as JPEG at a random quality."""
    import cv2

    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 grey image
        return face
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def occlude(face: np.ndarray, rng: np.random.Generator, cfg: CameraAugment) -> np.ndarray:
    """A box (hand, cup, hair, shadow) over part of the face: mean grey, dark or noise."""
    h, w = face.shape
    bh = max(1, int(round(h * rng.uniform(*cfg.occlude_side))))
    bw = max(1, int(round(w * rng.uniform(*cfg.occlude_side))))
    y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    out = face.copy()
    kind = rng.integers(3)
    if kind == 0:
        out[y0:y0 + bh, x0:x0 + bw] = int(face.mean())
    elif kind == 1:
        out[y0:y0 + bh, x0:x0 + bw] = int(rng.integers(0, 40))
    else:
        out[y0:y0 + bh, x0:x0 + bw] = rng.integers(0, 256, size=(bh, bw), dtype=np.uint8)
    return out


def augment_face(face: np.ndarray, rng: np.random.Generator,
                 cfg: CameraAugment = CameraAugment()) -> np.ndarray:
    """One camera-like view of a uint8 (H, W) face; uint8, same shape."""
    _check_face(face)
    out = warp_geometry(face, rng, cfg)
    # every draw is made whether or not a step applies, so one step's probability
    # does not shift the random numbers of the next
    steps = ((cfg.p_light, light_and_gamma), (cfg.p_blur, blur), (cfg.p_noise, sensor_noise),
             (cfg.p_jpeg, jpeg), (cfg.p_occlude, occlude))
    apply = rng.random(len(steps))
    for (p, step), u in zip(steps, apply):
        if u < p:
            out = step(out, rng, cfg)
    return out


def augment_faces(faces: np.ndarray, rng: np.random.Generator,
                  cfg: CameraAugment = CameraAugment()) -> np.ndarray:
    """augment_face over a uint8 (B, H, W) batch."""
    if faces.ndim != 3 or faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 (B, H, W), got {faces.dtype} {faces.shape}")
    return np.stack([augment_face(f, rng, cfg) for f in faces]) if len(faces) else faces.copy()


def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
          alpha: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018): each image blended with a shuffled partner, targets alike.
    x float (B, H, W[, C]), y float (B, K) rows summing to one."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)  # the first image stays the larger part
    partner = rng.permutation(len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    x_mix = lam.reshape(shape) * x + (1.0 - lam.reshape(shape)) * x[partner]
    return x_mix.astype(x.dtype), (lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]).astype(np.float32)


def cutmix(x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
           alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """CutMix (Yun et al. 2019): a box of a shuffled partner pasted into each image; the
    targets are mixed by the area each image keeps."""
    n, h, w = x.shape[:3]
    partner = rng.permutation(n)
    x_mix, lam = x.copy(), np.empty(n, np.float32)
    for i in range(n):
        cut = math.sqrt(1.0 - rng.beta(alpha, alpha))
        bh, bw = int(round(h * cut)), int(round(w * cut))
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(0, cy - bh // 2), min(h, cy + bh - bh // 2)
        x0, x1 = max(0, cx - bw // 2), min(w, cx + bw - bw // 2)
        x_mix[i, y0:y1, x0:x1] = x[partner[i], y0:y1, x0:x1]
        lam[i] = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    return x_mix, (lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]).astype(np.float32)


def epoch_order(seed: int, epoch: int, n: int, labels: np.ndarray | None = None,
                balance: float = 0.0) -> np.ndarray:
    """The order of the n training faces in one epoch, a pure function of (seed, epoch).

    balance 0 is a permutation (every face once). balance b > 0 draws n faces with
    replacement, a face of a class with n_c faces at weight n_c ** -b: each class's share
    of the epoch is proportional to n_c ** (1 - b), so 0.5 is square-root sampling and 1
    gives every class the same share (rare classes such as disgust seen several times
    over, each time under a different augmentation)."""
    rng = np.random.default_rng([seed, epoch, 0x0D0])
    if balance <= 0.0:
        return rng.permutation(n)
    if labels is None or len(labels) != n:
        raise ValueError("class-balanced sampling needs one label per training face")
    counts = np.bincount(labels)
    weight = counts[labels].astype(np.float64) ** -balance
    return rng.choice(n, size=n, replace=True, p=weight / weight.sum())


def class_shares(labels: np.ndarray, balance: float) -> np.ndarray:
    """Each class's expected share of an epoch's draws under epoch_order(balance)."""
    counts = np.bincount(labels).astype(np.float64)
    share = np.where(counts > 0, counts ** (1.0 - balance), 0.0)
    return share / share.sum()


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The random stream of one batch's augmentation, a pure function of (seed, epoch,
    batch): a run resumed at any epoch sees what an uninterrupted run sees."""
    return np.random.default_rng([seed, epoch, batch, 0xA06])


@dataclass(frozen=True)
class BatchRecipe:
    """How the training batches are made from faces and soft targets."""

    batch_size: int = 64
    camera: CameraAugment = CameraAugment()
    mix: str = "none"  # none, mixup or cutmix
    mix_prob: float = 0.5  # share of batches mixed
    mix_alpha: float = 0.2
    balance: float = 0.0  # class-balanced sampling exponent, 0 (off) to 1 (equal shares)

    def __post_init__(self) -> None:
        if not 0.0 <= self.balance <= 1.0:
            raise ValueError(f"class balance must lie in [0, 1], not {self.balance}")
        if self.mix not in ("none", "mixup", "cutmix"):
            raise ValueError(f"mix must be none, mixup or cutmix, not {self.mix!r}")
        if self.batch_size < 1 or not 0.0 <= self.mix_prob <= 1.0 or self.mix_alpha <= 0:
            raise ValueError("batch size must be positive, mix probability in [0, 1] and "
                             "mix alpha positive")


def steps_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size


def make_batch(x: np.ndarray, targets: np.ndarray, index: np.ndarray, rng: np.random.Generator,
               recipe: BatchRecipe) -> tuple[np.ndarray, np.ndarray]:
    """One augmented (and perhaps mixed) batch: float32 (B, H, W, 1) in [0, 1], targets (B, K)."""
    faces = augment_faces(x[index], rng, recipe.camera).astype(np.float32)[..., None] / 255.0
    y = targets[index].astype(np.float32)
    use_mix = rng.random() < recipe.mix_prob
    if recipe.mix == "mixup" and use_mix:
        faces, y = mixup(faces, y, rng, recipe.mix_alpha)
    elif recipe.mix == "cutmix" and use_mix:
        faces, y = cutmix(faces, y, rng, recipe.mix_alpha)
    return faces, y


def epoch_batches(x: np.ndarray, targets: np.ndarray, seed: int, epoch: int,
                  recipe: BatchRecipe, labels: np.ndarray | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every full batch of one epoch, in the order and with the augmentation that
    (seed, epoch) fix; the last partial batch is dropped. `labels` (the faces' classes)
    are needed when recipe.balance > 0."""
    order = epoch_order(seed, epoch, len(x), labels, recipe.balance)
    for b in range(steps_per_epoch(len(x), recipe.batch_size)):
        index = order[b * recipe.batch_size:(b + 1) * recipe.batch_size]
        yield make_batch(x, targets, index, batch_rng(seed, epoch, b), recipe)
