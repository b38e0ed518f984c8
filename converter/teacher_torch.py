#!/usr/bin/env python3
"""Train a large PyTorch teacher on FER2013 train (e.g. on a GPU machine) and write its
soft labels as a soft-label NPZ that `moodbox-convert soft-labels --teacher` takes.

    moodbox-convert teacher-torch --train $D/train.npz --val $D/val.npz \\
        --out models/training/distill/torch-resnet18w64-s1.npz [--width 64] [--epochs 100] \\
        [--seed 1] [--device cuda] [--resume]

(On a device machine with the repository but no install, `python converter/teacher_torch.py`
takes the same options.)

What crosses over to the converter is data only: for every train and val face, the
teacher's softmax averaged over the face and its mirror image, checked later against the
faces' pixel hash; TensorFlow is not needed here, PyTorch is not needed there. The teacher
never ships, so it may be far beyond the Pi's budget: by default a ResNet-18 layout for
48x48 faces (widths 64-128-256-512, about 11 M parameters, 1.3 G multiply-accumulates per
face, 22x the Pi model). Recipe as the converter's: the same augmentation (flip, rotation
+-10 deg, zoom 0.9-1.1, shift +-10%, brightness, contrast, a random erase), done on the
device per batch; SGD with Nesterov momentum, warm-up then cosine; label smoothing 0.1; the
best val epoch kept. Every epoch writes a resume point (<out>.pt) and a log
(<out>.log.csv), so `--resume` continues an interrupted run, e.g. across the device's
10-minute commands. Several teachers (seeds, widths) are combined by listing their NPZs,
with any Keras teachers, in `moodbox-convert soft-labels --teacher`.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _converter_modules():
    """moodbox.converter's data and distill modules (numpy only), installed or from this
    checkout's source folders (a device machine may have the repository but no install)."""
    try:
        from moodbox.converter import data, distill
    except ImportError:
        for name, folder in (("moodbox", "edge"), ("moodbox.converter", "converter")):
            if name not in sys.modules:
                module = types.ModuleType(name)
                module.__path__ = [str(REPO / folder)]
                sys.modules[name] = module
        from moodbox.converter import data, distill
    return data, distill


def build_resnet(width: int = 64, blocks=(2, 2, 2, 2), classes: int = 7, dropout: float = 0.3):
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout))
            self.skip = (nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    layers = [nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    cin = width
    for stage, n in enumerate(blocks):
        cout = width * 2 ** stage
        for i in range(n):
            layers.append(Block(cin, cout, 2 if (i == 0 and stage > 0) else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def augment(x, gen):
    """The converter's augmentation, batched on the device: x float (B,1,H,W) in [0,1]."""
    import torch
    import torch.nn.functional as F

    b, dev = x.shape[0], x.device

    def u(lo, hi, shape=(b,)):
        return torch.rand(shape, generator=gen, device=dev) * (hi - lo) + lo

    flip = torch.where(u(0, 1) < 0.5, -1.0, 1.0)
    angle = u(-10, 10) * math.pi / 180
    zoom = u(0.9, 1.1)
    tx, ty = u(-0.2, 0.2), u(-0.2, 0.2)  # +-10% of the side in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                         torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.8, 1.2).view(b, 1, 1, 1) + mean + u(-0.1, 0.1).view(b, 1, 1, 1)
    h, w = x.shape[2], x.shape[3]
    side = torch.randint(8, 17, (b,), generator=gen, device=dev)
    cy = torch.randint(0, h, (b,), generator=gen, device=dev)
    cx = torch.randint(0, w, (b,), generator=gen, device=dev)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    half = (side // 2).view(b, 1, 1)
    box = ((ys - cy.view(b, 1, 1)).abs() <= half) & ((xs - cx.view(b, 1, 1)).abs() <= half)
    erase = (u(0, 1) < 0.5).view(b, 1, 1) & box
    x = torch.where(erase.unsqueeze(1), torch.zeros_like(x), x)
    return x.clamp(0, 1)


def predict(model, x_uint8: np.ndarray, device, batch: int = 512):
    """(one view, flip-averaged) softmax probabilities, float32 numpy."""
    import torch

    model.eval()
    plain, flipped = [], []
    with torch.no_grad():
        for i in range(0, len(x_uint8), batch):
            xb = torch.from_numpy(x_uint8[i:i + batch]).to(device).float().div(255).unsqueeze(1)
            with _autocast(device):
                p = model(xb).float().softmax(1)
                q = model(xb.flip(-1)).float().softmax(1)
            plain.append(p.cpu().numpy())
            flipped.append(q.cpu().numpy())
    plain, flipped = np.concatenate(plain), np.concatenate(flipped)
    return plain.astype(np.float32), ((plain + flipped) / 2).astype(np.float32)


def _autocast(device):
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def lr_at(epoch_float: float, peak: float, warmup: float, epochs: int) -> float:
    """Linear warm-up, then cosine decay to 0 at the last epoch."""
    if epoch_float < warmup:
        return peak * (epoch_float + 1e-3) / warmup
    progress = (epoch_float - warmup) / max(epochs - warmup, 1e-9)
    return 0.5 * peak * (1 + math.cos(math.pi * min(progress, 1.0)))


def _atomic_save(obj, path: Path) -> None:
    """torch.save all or nothing, through a temporary file made exclusively beside `path`
    (never through a symlink planted at a guessed name)."""
    import os
    import tempfile

    import torch

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train(args) -> int:
    import torch
    import torch.nn.functional as F

    data_mod, distill = _converter_modules()
    try:
        train_set, val_set = data_mod.load_npz(args.train), data_mod.load_npz(args.val)
    except data_mod.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if train_set.classes != val_set.classes or train_set.x.shape[1:] != val_set.x.shape[1:]:
        print(f"error: {args.train} and {args.val} differ in classes or face size",
              file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    try:  # its resume point and log go beside it, from the first epoch
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot make the folder for --out {out} ({exc}); pass a writable "
              "path", file=sys.stderr)
        return 2
    ckpt_path, log_path = out.with_suffix(".pt"), out.with_suffix(".log.csv")
    config = {k: getattr(args, k) for k in ("width", "epochs", "batch_size", "lr",
                                            "weight_decay", "label_smoothing", "warmup_epochs",
                                            "seed")}
    torch.manual_seed(args.seed)
    model = build_resnet(args.width, classes=len(train_set.classes)).to(device)
    model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    state = {"epoch": 0, "best_acc": -1.0, "best_epoch": 0, "best_model": None,
             "train_seconds": 0.0}
    if ckpt_path.exists() and args.resume:
        saved = torch.load(ckpt_path, map_location=device, weights_only=False)
        if saved["config"] != config:
            print(f"error: {ckpt_path} was made with other settings ({saved['config']}); "
                  "use the same settings, or another --out to start afresh", file=sys.stderr)
            return 2
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        print(f"resuming {ckpt_path} after epoch {state['epoch']} "
              f"(best val {state['best_acc']:.4f} at epoch {state['best_epoch']})", flush=True)
    elif ckpt_path.exists():
        print(f"error: {ckpt_path} exists; pass --resume to continue it, or remove it",
              file=sys.stderr)
        return 2
    params = sum(p.numel() for p in model.parameters())
    print(f"teacher resnet18 width {args.width}: {params:,} parameters, on {device}", flush=True)

    x_train = torch.from_numpy(train_set.x).to(device)
    y_train = torch.from_numpy(train_set.y).to(device)
    gen = torch.Generator(device=device)
    steps = len(train_set) // args.batch_size
    new_log = not log_path.exists() or state["epoch"] == 0
    with log_path.open("w" if new_log else "a", newline="") as fh:
        log = csv.writer(fh)
        if new_log:
            log.writerow(["epoch", "loss", "accuracy", "val_accuracy", "val_accuracy_flip",
                          "lr", "seconds"])
        first = state["epoch"]
        for epoch in range(first, args.epochs):
            t0 = time.time()
            gen.manual_seed(args.seed * 100003 + epoch)
            order = torch.randperm(len(train_set), generator=gen, device=device)
            model.train()
            total_loss, correct = 0.0, 0
            for step in range(steps):
                lr = lr_at(epoch + step / steps, args.lr, args.warmup_epochs, args.epochs)
                for group in opt.param_groups:
                    group["lr"] = lr
                idx = order[step * args.batch_size:(step + 1) * args.batch_size]
                xb = augment(x_train[idx].float().div(255).unsqueeze(1), gen)
                xb = xb.contiguous(memory_format=torch.channels_last)
                with _autocast(device):
                    logits = model(xb)
                    loss = F.cross_entropy(logits.float(), y_train[idx],
                                           label_smoothing=args.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += float(loss.detach())
                correct += int((logits.argmax(1) == y_train[idx]).sum())
            plain, flip = predict(model, val_set.x, device)
            acc, acc_flip = float(np.mean(plain.argmax(1) == val_set.y)), float(np.mean(flip.argmax(1) == val_set.y))
            seconds = time.time() - t0
            state["epoch"], state["train_seconds"] = epoch + 1, state["train_seconds"] + seconds
            if acc > state["best_acc"]:
                state.update(best_acc=acc, best_epoch=epoch + 1,
                             best_model={k: v.detach().cpu().clone()
                                         for k, v in model.state_dict().items()})
            log.writerow([epoch + 1, round(total_loss / max(steps, 1), 5),
                          round(correct / max(steps * args.batch_size, 1), 5), round(acc, 5),
                          round(acc_flip, 5), round(lr, 6), round(seconds, 1)])
            fh.flush()
            _atomic_save({"config": config, "model": model.state_dict(),
                          "opt": opt.state_dict(), "state": state}, ckpt_path)
            print(f"epoch {epoch + 1}/{args.epochs}: loss {total_loss / max(steps, 1):.4f}, "
                  f"val {acc:.4f} (flip {acc_flip:.4f}), {seconds:.1f} s", flush=True)
            if args.stop_after and epoch + 1 - first >= args.stop_after:
                break
    if state["epoch"] < args.epochs:
        print(f"stopped after epoch {state['epoch']} of {args.epochs}; rerun with --resume",
              flush=True)
        return 0

    model.load_state_dict(state["best_model"])
    weights = hashlib.sha256()
    for k, v in sorted(state["best_model"].items()):
        weights.update(k.encode())
        weights.update(v.float().numpy().tobytes())
    train_plain, train_flip = predict(model, train_set.x, device)
    val_plain, val_flip = predict(model, val_set.x, device)
    acc = float(np.mean(val_plain.argmax(1) == val_set.y))
    acc_flip = float(np.mean(val_flip.argmax(1) == val_set.y))
    name = f"torch:resnet18w{args.width}-s{args.seed}"
    labels = distill.SoftLabels(train_probs=train_flip, classes=tuple(train_set.classes),
                                train_sha1=distill.faces_sha1(train_set), val_probs=val_flip,
                                val_sha1=distill.faces_sha1(val_set))
    labels.provenance = {
        "teachers": [name], "teacher_sha256": [weights.hexdigest()],
        "train_data": str(args.train), "val_data": str(args.val),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "PyTorch teacher (converter/teacher_torch.py): softmax (temperature 1) "
                "averaged over face and horizontal mirror, best val epoch",
        "teacher_val_accuracy": [acc], "teacher_val_accuracy_flip": [acc_flip],
        "ensemble_val_accuracy": acc, "ensemble_val_accuracy_flip": acc_flip,
        "teacher_config": json.dumps(config), "teacher_params": params,
        "teacher_best_epoch": state["best_epoch"],
        "teacher_train_seconds": round(state["train_seconds"], 1),
        "teacher_device": str(torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"),
        "torch_version": torch.__version__,
    }
    distill.save_soft_labels(out, labels)
    print(f"{name}: val accuracy {acc * 100:.2f}% one view, {acc_flip * 100:.2f}% "
          f"flip-averaged (best epoch {state['best_epoch']}, "
          f"{state['train_seconds'] / 60:.1f} min of training)")
    print(f"wrote {out}: {len(train_set)} train and {len(val_set)} val soft labels")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="FER2013 train NPZ (x, y, classes)")
    ap.add_argument("--val", required=True, help="FER2013 val NPZ: best-epoch choice, report")
    ap.add_argument("--out", required=True, help="the soft-label NPZ to write (.npz)")
    ap.add_argument("--width", type=int, default=64, help="first stage's channels (64: ResNet-18)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1, help="peak SGD learning rate")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--warmup-epochs", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="", help="cuda, cpu, ... (default: cuda if present)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's choice)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>.pt")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many epochs in this call (resume later)")
    args = ap.parse_args(argv)
    if not args.out.endswith(".npz"):
        ap.error("--out must end in .npz (the soft labels)")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("error: PyTorch is not installed here; run this on a machine that has it "
              "(pip install torch)", file=sys.stderr)
        return 2
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
