"""moodbox-convert: train the emotion CNN, convert it to int8 TFLite, evaluate models."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger("moodbox-convert")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_train(args: argparse.Namespace) -> int:
    from moodbox.converter.data import load_npz
    from moodbox.converter.train import TrainConfig, train

    cfg = TrainConfig(arch=args.arch, width=args.width, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                      seed=args.seed, scale=args.scale, threads=args.threads,
                      warmup_epochs=args.warmup_epochs, init_from=args.init_from or "",
                      teacher_labels=args.teacher_labels or "",
                      distill_weight=args.distill_weight
                      if args.teacher_labels or args.online_teachers else 0.0,
                      temperature=args.temperature, augment=args.augment, mix=args.mix,
                      mix_prob=args.mix_prob, mix_alpha=args.mix_alpha,
                      ferplus=args.ferplus or "", ferplus_weight=args.ferplus_weight,
                      online_teachers=tuple(args.online_teachers or ()),
                      precision=args.precision, balance=args.balance,
                      add_faces=args.add_faces or "", add_split=args.add_split,
                      add_repeat=args.add_repeat)
    train_set, val_set = load_npz(args.train), load_npz(args.val)
    state = train(train_set, val_set, Path(args.out), cfg, resume=args.resume)
    logger.info("best val accuracy %.4f at epoch %d; model in %s",
                state["best_val_accuracy"], state["best_epoch"], args.out)
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from moodbox.converter.data import load_npz
    from moodbox.converter.train import average_models

    done = average_models([Path(m) for m in args.models], load_npz(args.train), Path(args.out),
                          seed=args.seed)
    logger.info("averaged %d models; batch-norm statistics from %d training batches; wrote %s",
                len(done["models"]), done["batches"], args.out)
    return 0


def cmd_class_rates(args: argparse.Namespace) -> int:
    from moodbox.converter.data import load_npz
    from moodbox.converter.prior import correct_class_rates

    fit = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    result = correct_class_rates(Path(args.model), load_npz(args.train), Path(args.out), fit,
                                 reference=Path(args.reference) if args.reference else None)
    print(result.summary())
    print(f"wrote {args.out}")
    return 0


def cmd_soft_labels(args: argparse.Namespace) -> int:
    from moodbox.converter.data import load_npz
    from moodbox.converter.distill import make_soft_labels, save_soft_labels

    if args.threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    train_set = load_npz(args.data)
    val_set = load_npz(args.val) if args.val else None
    labels, reports = make_soft_labels([Path(t) for t in args.teacher], train_set, val_set)
    save_soft_labels(Path(args.out), labels)
    for r in reports:
        print(f"{r.name}: val accuracy {r.accuracy * 100:.2f}% one view, "
              f"{r.accuracy_flip * 100:.2f}% flip-averaged")
    print(f"wrote {args.out}: {len(labels.train_probs)} train"
          + (f" and {len(labels.val_probs)} val" if labels.val_probs is not None else "")
          + f" soft labels from {len(args.teacher)} teacher(s)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from moodbox.converter.convert import ConvertSettings, convert

    settings = ConvertSettings(input_size=args.input_size, scale=args.scale,
                               calib_count=args.calib_count, min_agreement=args.min_agreement,
                               max_drop=args.max_drop, check_count=args.check_count,
                               io_type=args.io_type)
    report = convert(Path(args.model), Path(args.calib), Path(args.out), settings,
                     check_data=Path(args.check) if args.check else None)
    print(report.summary())
    if not report.passed:
        print(f"error: {report.failure}", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from moodbox.converter.evaluate import evaluate_path

    result = evaluate_path(Path(args.model), Path(args.data), threads=args.threads,
                           exclude_duplicates_of=Path(args.exclude_duplicates_of)
                           if args.exclude_duplicates_of else None,
                           input_size=args.input_size, scale=args.scale,
                           sfew=Path(args.sfew) if args.sfew else None,
                           sfew_split=args.sfew_split)
    if args.plot:
        from moodbox.converter.evaluate import plot_confusion
        plot_confusion(result, Path(args.plot))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.report())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodbox-convert", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a Keras CNN on NPZ faces (resumable)")
    t.add_argument("--train", required=True, help="training NPZ (x, y, classes)")
    t.add_argument("--val", required=True, help="validation NPZ for early stopping/selection")
    t.add_argument("--out", required=True, help="where the best model goes (.keras)")
    t.add_argument("--arch", default="resnet", choices=["resnet", "vgg", "tiny"])
    t.add_argument("--width", type=int, default=None, help="base channel width")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.05, help="peak SGD learning rate")
    t.add_argument("--patience", type=int, default=15, help="early-stopping patience (epochs)")
    t.add_argument("--seed", type=int, default=1234)
    t.add_argument("--scale", choices=["unit", "symmetric"], default="unit")
    t.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--warmup-epochs", type=int, default=2)
    t.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from this model's weights (same --arch/--width), e.g. for a "
                        "second, short, low-learning-rate cycle")
    t.add_argument("--teacher-labels", default=None, metavar="NPZ",
                   help="distil from these teacher soft labels (moodbox-convert soft-labels)")
    t.add_argument("--distill-weight", type=float, default=0.7, metavar="A",
                   help="with --teacher-labels: loss = (1-A) * smoothed cross-entropy on the "
                        "true labels + A * T^2 * KL(teacher_T || student_T)")
    t.add_argument("--temperature", type=float, default=3.0, metavar="T",
                   help="with --teacher-labels: softening temperature")
    t.add_argument("--augment", choices=["classic", "camera"], default="classic",
                   help="classic: flip, rotation, zoom, shift, brightness, erase (TensorFlow); "
                        "camera: crop scale 0.8-1.2, shift 20%%, aspect 0.8-1.25, low light and "
                        "gamma, blur, sensor noise, JPEG, occlusion (converter/augment.py), with "
                        "a data order that a resumed run repeats exactly")
    t.add_argument("--mix", choices=["none", "mixup", "cutmix"], default="none",
                   help="with --augment camera: mix pairs of faces and their targets")
    t.add_argument("--mix-prob", type=float, default=0.5, help="share of batches mixed")
    t.add_argument("--mix-alpha", type=float, default=0.2, help="Beta(alpha, alpha) of the mix")
    t.add_argument("--ferplus", default=None, metavar="NPZ",
                   help="with --augment camera: FER+ crowd votes for the --train faces "
                        "(ferplus_train.npz), blended into the targets")
    t.add_argument("--ferplus-weight", type=float, default=0.5, metavar="W",
                   help="target = (1-W) * one-hot label + W * FER+ vote share over the classes")
    t.add_argument("--online-teachers", nargs="+", default=None, metavar="MODEL",
                   help="with --augment camera: float Keras teachers scored on every augmented "
                        "(and mixed) batch, so the student distils from the view it sees "
                        "(--distill-weight, --temperature as with --teacher-labels)")
    t.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32",
                   help="Keras precision policy while training (see `bench-train`); the saved "
                        "model is float32 either way")
    t.add_argument("--balance", type=float, default=0.0, metavar="B",
                   help="with --augment camera: class-balanced sampling, a face of a class with "
                        "n faces drawn at weight n**-B (0: off, 0.5: square-root sampling, 1: "
                        "every class an equal share of each epoch)")
    t.add_argument("--add-faces", default=None, metavar="DIR",
                   help="more labelled faces to train on: a folder with labels.json "
                        "(\"<split>/<Class>/<file>\" -> class) as ../shared/data/sfew, each "
                        "face prepared as the daemon prepares a crop. Never evaluate on the "
                        "split you add (SFEW: add train, check on --sfew-split val)")
    t.add_argument("--add-split", choices=["train", "val", "all"], default="train",
                   help="which split of --add-faces joins the training set")
    t.add_argument("--add-repeat", type=int, default=1, metavar="K",
                   help="each added face appears K times per epoch (1-100)")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser("average", help="average checkpoints' weights (SWA), recompute batch norm")
    a.add_argument("--models", nargs="+", required=True, help="two or more .keras checkpoints")
    a.add_argument("--train", required=True, help="training NPZ for the batch-norm statistics")
    a.add_argument("--out", required=True, help="the averaged model (.keras)")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=cmd_average)

    c = sub.add_parser("class-rates", help="raise the logits of rare classes (e.g. fear, "
                       "disgust) that the model names less often on the training faces than "
                       "they are labelled, until it names them that often; folded into the "
                       "model's last layer")
    c.add_argument("--model", required=True, help="the float model (.keras)")
    c.add_argument("--train", required=True, help="the training NPZ the shift is fitted on")
    c.add_argument("--classes", required=True, metavar="A,B",
                   help="comma-separated classes to correct, e.g. fear,disgust")
    c.add_argument("--reference", default=None, metavar="MODEL",
                   help="raise to how often this model (the one being replaced, .keras) names "
                        "each class on the training faces, instead of the label counts")
    c.add_argument("--out", required=True, help="the corrected model (.keras, with its sidecar)")
    c.set_defaults(func=cmd_class_rates)

    s = sub.add_parser("soft-labels", help="teacher probabilities for distillation: "
                                           "averaged over teachers and face + mirror")
    s.add_argument("--teacher", nargs="+", required=True, metavar="MODEL",
                   help="float Keras teachers (.keras/.h5), or soft-label NPZs made elsewhere "
                        "for the same faces (e.g. by a PyTorch teacher)")
    s.add_argument("--data", required=True, help="training NPZ the student will train on")
    s.add_argument("--val", default=None, help="validation NPZ (also labelled, and the "
                                               "teachers scored on it)")
    s.add_argument("--out", required=True, help="soft-label NPZ to write")
    s.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    s.set_defaults(func=cmd_soft_labels)

    c = sub.add_parser("convert", help="full-integer int8 TFLite conversion with self-check")
    c.add_argument("--model", required=True, help="Keras model (.keras or .h5)")
    c.add_argument("--calib", required=True, help="NPZ of real faces for calibration")
    c.add_argument("--out", required=True, help="output .tflite (a .json sidecar goes beside it)")
    c.add_argument("--check", default=None,
                   help="NPZ of held-out faces for the float/int8 check (default: --calib "
                        "faces not used for calibration)")
    c.add_argument("--input-size", type=int, choices=[48, 64], default=None,
                   help="model input size (default: read from the model)")
    c.add_argument("--scale", choices=["unit", "symmetric"], default=None,
                   help="pixel scaling the model was trained with: unit = [0,1], "
                        "symmetric = [-1,1] (default: the model's sidecar, else unit)")
    c.add_argument("--calib-count", type=int, default=500)
    c.add_argument("--check-count", type=int, default=0,
                   help="faces used for the check (0: all held-out faces)")
    c.add_argument("--min-agreement", type=float, default=0.97)
    c.add_argument("--max-drop", type=float, default=1.5, help="accuracy points")
    c.add_argument("--io-type", choices=["int8", "uint8"], default="int8",
                   help="type of the model's input and output tensors")
    c.set_defaults(func=cmd_convert)

    e = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class table, confusion, latency")
    e.add_argument("--model", required=True,
                   help=".tflite, .keras or .h5; A+B[+C] scores the ensemble averaging them")
    e.add_argument("--data", required=True, help="NPZ of labelled faces")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--plot", default=None, help="write the confusion matrix as a PNG")
    e.add_argument("--threads", type=int, default=1, help="interpreter threads for latency")
    e.add_argument("--exclude-duplicates-of", default=None, metavar="NPZ",
                   help="also report accuracy without images that are exact copies of "
                        "images in this NPZ (e.g. the training set)")
    e.add_argument("--input-size", type=int, default=None)
    e.add_argument("--scale", choices=["unit", "symmetric"], default=None)
    e.add_argument("--sfew", default=None, metavar="DIR",
                   help="also score the faces of this SFEW 2.0 folder (labels.json, train/, "
                        "val/: film crops, another domain), whole crop to grey 48x48")
    e.add_argument("--sfew-split", choices=["all", "train", "val"], default="all")
    e.set_defaults(func=cmd_evaluate)

    from moodbox.converter import bench
    b = sub.add_parser("bench", help="`moodbox bench` side by side with the fer package, "
                       "accuracy on FER2013 val and a Raspberry Pi estimate")
    bench.add_arguments(b)
    b.set_defaults(func=bench.run_bench)

    tt = sub.add_parser("teacher-torch", add_help=False,
                        help="train a large PyTorch teacher (GPU machine) and write its soft "
                        "labels; options: moodbox-convert teacher-torch --help")
    tt.add_argument("rest", nargs=argparse.REMAINDER)
    tt.set_defaults(func=cmd_teacher_torch)

    pr = sub.add_parser("pack-run", help="pack a training run folder (resume points, teachers, "
                        "students) into one checked archive for keeping outside git")
    pr.add_argument("run", help="the run folder, e.g. runs/distill")
    pr.add_argument("--out", default=None, help="archive to write (default: <run>.run.tar.gz)")
    pr.add_argument("--force", action="store_true", help="replace an existing archive")
    pr.set_defaults(func=cmd_pack_run)

    ur = sub.add_parser("unpack-run", help="unpack a pack-run archive, checking every file")
    ur.add_argument("archive")
    ur.add_argument("--into", default="runs", help="folder to unpack under (default: runs)")
    ur.set_defaults(func=cmd_unpack_run)

    pd = sub.add_parser("pack-data", help="pack NPZ face sets as lossless PNG shards small "
                        "enough for a device machine's 64 MiB calls")
    pd.add_argument("npz", nargs="+", help="face sets, e.g. ../shared/data/fer2013/train.npz")
    pd.add_argument("--out", required=True, help="a new folder for shard-K.npz (git-ignore it)")
    pd.add_argument("--shard-mib", type=float, default=48.0,
                    help="largest shard in MiB (default 48: a shard plus the tree fits one call)")
    pd.set_defaults(func=cmd_pack_data)

    ud = sub.add_parser("unpack-data", help="rebuild the NPZ face sets from all shards of a pack")
    ud.add_argument("shards", nargs="+", help="every shard-K.npz of the pack")
    ud.add_argument("--into", required=True, help="folder for the rebuilt NPZ files")
    ud.set_defaults(func=cmd_unpack_data)

    from moodbox.converter import trainbench
    bt = sub.add_parser("bench-train", help="CPU-ms per training step: float32 against Keras' "
                                            "mixed_bfloat16 policy")
    trainbench.add_arguments(bt)
    bt.set_defaults(func=trainbench.run_bench_train)
    return p


def cmd_teacher_torch(args: argparse.Namespace) -> int:
    from moodbox.converter import teacher_torch

    return teacher_torch.main(args.rest)


def cmd_pack_run(args: argparse.Namespace) -> int:
    from moodbox.converter.runs import pack_run

    packed = pack_run(Path(args.run), Path(args.out) if args.out else None, force=args.force)
    print(f"packed {packed.files} files ({packed.bytes_in / 1e6:.1f} MB) into {packed.archive} "
          f"({packed.bytes_out / 1e6:.1f} MB); keep it outside git, bring it back with "
          f"`moodbox-convert unpack-run {packed.archive}`")
    return 0


def cmd_unpack_run(args: argparse.Namespace) -> int:
    from moodbox.converter.runs import unpack_run

    target = unpack_run(Path(args.archive), Path(args.into))
    print(f"unpacked into {target}; every file matches its manifest")
    return 0


def cmd_pack_data(args: argparse.Namespace) -> int:
    from moodbox.converter.runs import pack_data

    shards = pack_data([Path(p) for p in args.npz], Path(args.out), shard_mib=args.shard_mib)
    from moodbox.converter.runs import tracked_tree_bytes

    for path in shards:
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    tree = tracked_tree_bytes(Path.cwd())
    if tree is not None:
        largest = max(p.stat().st_size for p in shards)
        total = (tree + largest) / 2**20
        print(f"the tracked tree is {tree / 2**20:.1f} MiB: tree + largest shard = {total:.1f} MiB "
              f"({'fits' if total <= 63 else 'does not fit'} a device call's 64 MiB with a margin)")
    print(f"{len(shards)} shard(s); on the device: moodbox-convert unpack-data "
          f"{' '.join(str(p) for p in shards)} --into DIR")
    return 0


def cmd_unpack_data(args: argparse.Namespace) -> int:
    from moodbox.converter.runs import unpack_data

    for path in unpack_data([Path(p) for p in args.shards], Path(args.into)):
        print(f"rebuilt {path} (arrays identical to the packed ones)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    _quiet_tensorflow()
    from moodbox.converter.convert import ConvertError
    from moodbox.converter.data import DataError
    from moodbox.converter.runs import PackError
    try:
        return args.func(args)
    except (DataError, PackError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # bad --init-from, unwritable --out, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConvertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun with --resume to continue training", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
