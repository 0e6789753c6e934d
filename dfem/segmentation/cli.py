"""``dfem segment train|eval|compare``: segmentation with IEL and DSA heads."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_cli"]


def _print_epoch(row: dict) -> None:
    print(f"epoch {row['epoch']}: loss {row['loss']:.4f}, validation Dice "
          f"{100 * row['val_dice_mean']:.1f} %, IoU {100 * row['val_iou_mean']:.1f} % "
          f"({row['seconds']:.1f} s)", file=sys.stderr, flush=True)


def _train(args) -> int:
    from dfem.cli_tools import Interrupted
    from dfem.exceptions import DfemError
    from dfem.segmentation.config import load_segmentation_config
    from dfem.segmentation.training import SegmentationRun

    config = load_segmentation_config(args.config, overrides=args.set)
    checkpoint = Path(args.out) / "checkpoint.pt"
    # the refusals come before the data are made and before anything is written
    if args.resume and not checkpoint.is_file():
        raise DfemError(f"cannot resume: {checkpoint} does not exist; start without --resume.")
    if not args.resume and checkpoint.exists():
        raise DfemError(f"{checkpoint} exists: pass --resume to continue that run, "
                        f"or choose another --out.")
    run = SegmentationRun(config, args.model, args.labels, args.seed, args.out)
    if args.resume:
        run.resume()
    try:
        history = run.train(progress=_print_epoch)
    except KeyboardInterrupt:
        kept = (f"{checkpoint} holds the last finished epoch; continue with --resume"
                if checkpoint.is_file() else "no checkpoint was written yet")
        raise Interrupted(kept) from None
    final = history[-1] if history else {}
    print(f"{args.model} on {args.labels} labels, seed {args.seed}: validation Dice "
          f"{100 * final.get('val_dice_mean', float('nan')):.1f} %; wrote {args.out}/"
          f"checkpoint.pt and history.json")
    return 0


def _eval(args) -> int:
    from dfem.exceptions import DfemError
    from dfem.fileio import check_output_folder, write_json_atomic
    from dfem.plots import plot_segmentation_grid
    from dfem.segmentation.training import SegmentationRun, evaluate

    folder = check_output_folder(args.dir, "the run folder", exists=True)  # gets metrics.json
    runs = sorted(p.parent for p in folder.glob("**/checkpoint.pt"))
    if not runs:
        raise DfemError(f"{folder} holds no checkpoint.pt; train first (dfem segment train "
                        f"or compare).")
    metrics, columns = {}, None
    for path in runs:
        run = SegmentationRun.from_checkpoint(path)
        described, images, masks = run.describe(), run.data["val_images"], run.data["val_masks"]
        name = str(path.relative_to(folder)) if path != folder else "run"
        metrics[name] = dict(**described, epochs=run.epoch, **evaluate(run.model, images, masks))
        if columns is None:
            columns = {"image": images[:3], "clean label": masks[:3]}
        if len(columns) < 8:  # the figure shows the first six runs; the metrics cover all
            label = f"{described['model']}, {described['labels']}, seed {described['seed']}"
            columns[label] = run.model.predict(images[:3])
    single = len(metrics) == 1
    write_json_atomic(folder / "metrics.json", next(iter(metrics.values())) if single
                      else metrics)
    plot_segmentation_grid(columns, run.model.num_classes, folder / "predictions.png")
    for name, row in metrics.items():
        print(f"{name}: Dice {100 * row['dice_mean']:.1f} %, IoU {100 * row['iou_mean']:.1f} %"
              f" (per class Dice {', '.join(f'{100 * d:.1f}' for d in row['dice'])})")
    print(f"wrote {folder}/metrics.json and predictions.png")
    return 0


def _compare(args) -> int:
    from dfem.cli_tools import Interrupted
    from dfem.segmentation.comparison import compare
    from dfem.segmentation.config import load_segmentation_config

    config = load_segmentation_config(args.config, overrides=args.set)

    def report(result, done, total):
        final = result["history"][-1]
        print(f"[{done}/{total}] {result['model']} on {result['labels']} labels, seed "
              f"{result['seed']}: Dice {100 * final['val_dice_mean']:.1f} % "
              f"({result['train_s']:.0f} s)", file=sys.stderr, flush=True)

    try:
        summary = compare(config, args.out, seeds=args.seeds, workers=args.workers,
                          progress=report)
    except KeyboardInterrupt:
        if not (Path(args.out) / "runs").is_dir():
            raise
        raise Interrupted(f"the runs under {args.out}/runs keep their checkpoints; the same "
                          f"command continues the comparison") from None
    print(f"{len(summary['runs'])} runs in {summary['seconds']:.0f} s; wrote {args.out}/"
          f"compare.json, table.md, curves.png and grid.png")
    return 0


def add_cli(sub) -> None:
    """Register ``dfem segment`` on the top-level subparsers."""
    from dfem.cli_tools import add_set_option, non_negative_int, positive_int
    from dfem.segmentation.models import MODELS

    parser = sub.add_parser("segment", help="segmentation U-Nets with IEL and DSA heads")
    commands = parser.add_subparsers(dest="segment_command", required=True)
    train = commands.add_parser("train", help="train one model")
    train.add_argument("config", help="the segmentation config (TOML)")
    train.add_argument("--out", required=True, help="run folder (checkpoint.pt, history.json)")
    train.add_argument("--model", choices=MODELS, default="baseline")
    train.add_argument("--labels", choices=["clean", "noisy"], default="noisy",
                       help="train on clean or noisy labels (validation is always clean)")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--resume", action="store_true", help="continue from checkpoint.pt")
    train.set_defaults(run=_train)
    evaluate = commands.add_parser("eval", help="metrics.json and predictions.png of a run "
                                   "folder or of every run under a comparison folder")
    evaluate.add_argument("dir")
    evaluate.set_defaults(run=_eval)
    comp = commands.add_parser("compare", help="baseline, +IEL and +DSA on clean and noisy "
                               "labels over several seeds")
    comp.add_argument("config")
    comp.add_argument("--out", required=True, help="folder for the runs and the results")
    comp.add_argument("--seeds", type=positive_int,
                      help="seeds per model (default: compare.seeds)")
    comp.add_argument("--workers", type=positive_int, help="parallel processes (default: "
                      "compare.workers)")
    for command in (train, comp):
        add_set_option(command, "training.epochs=4")
    comp.set_defaults(run=_compare)
