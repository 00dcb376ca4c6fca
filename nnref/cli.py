"""The ``nnref`` command line: train, eval, predict, export, gradcheck, runs, playground, bench.

This module is the only place that parses arguments, prints and picks exit codes: 0 success, 2 usage
errors (argparse), 1 every other failure — always a one-paragraph message on stderr, never a raw traceback
(set ``NNREF_DEBUG=1`` to see one).  Everything it calls returns values or raises.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------------------------------
# argparse types: bad values are rejected with a clear message (exit 2)
# --------------------------------------------------------------------------------------------------
def _number_type(convert, what: str, ok, requirement: str):
    """An argparse type: ``convert`` the text, then insist on ``ok(value)``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
        return value
    return parse


positive_int = _number_type(int, "a positive integer", lambda v: v >= 1, "must be at least 1")
non_negative_int = _number_type(int, "a whole number ≥ 0", lambda v: v >= 0, "must be ≥ 0")
positive_float = _number_type(float, "a number", lambda v: math.isfinite(v) and v > 0, "must be a finite number > 0")
non_negative_float = _number_type(float, "a number", lambda v: math.isfinite(v) and v >= 0,
                                  "must be a finite number ≥ 0")
fraction = _number_type(float, "a number", lambda v: 0 < v < 1, "must be between 0 and 1")


def int_list(text: str) -> tuple[int, ...]:
    """'800' or '300,100' → (800,) or (300, 100); every entry ≥ 1."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated sizes such as 800 or 300,100, "
                                         f"got {text!r}")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers such as 800 or 300,100, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"every size must be at least 1, got {text!r}")
    return values


def digit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a digit 0-9, got {text!r}") from None
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"expected a digit 0-9, got {value}")
    return value


def digit_pair(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two digits such as 3,8, got {text!r}")
    a, b = (digit(p.strip()) for p in parts)
    if a == b:
        raise argparse.ArgumentTypeError(f"the two classes must differ, got {text!r}")
    return a, b


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N — and a CUDA device only where PyTorch sees one."""
    from .config import resolve_device

    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("device must be", "expected")) from None
    return text


# --------------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------------
def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .layers import ACTIVATIONS
    from .models import METRICS

    g = p.add_argument_group("optimisation (defaults depend on the model; see README)")
    g.add_argument("--epochs", type=positive_int, help="passes over the training set")
    g.add_argument("--lr", type=positive_float, help="step size α of w ← w − α ∂L/∂w")
    g.add_argument("--batch-size", type=positive_int, help="1 is the lecture's per-instance SGD")
    g.add_argument("--momentum", type=non_negative_float, help="SGD momentum (0 = plain gradient descent)")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum (needs --momentum > 0)")
    g.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="L2 penalty (default 0)")
    g.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine: α decays to 0 over the run (default); constant: α throughout")
    g.add_argument("--loss", choices=("fused", "unfused"), default="fused",
                   help="fused: stable loss from logits (default); unfused: the lecture's activation → "
                        "cross-entropy on probabilities")
    g.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off",
                   help="mixed precision: matrix products in bfloat16 or float16 under torch.autocast, losses "
                        "and parameters in float32 (fp16: CUDA only, with loss scaling); default off")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile forward and loss (backward: nnref's own, through AOTAutograd)")
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=int_list, default=(800,), help="MLP hidden sizes, e.g. 800 or 300,100")
    m.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu", help="MLP hidden activation")
    m.add_argument("--k", type=int_list, default=(3,), help="KNN neighbours, one or a list such as 1,3,5")
    m.add_argument("--metric", choices=METRICS, default="euclidean", help="KNN distance")
    t = m.add_mutually_exclusive_group()
    t.add_argument("--positive-class", type=digit, metavar="K",
                   help="binary task: label 1 for digit K, 0 otherwise (logreg default: 0)")
    t.add_argument("--classes", type=digit_pair, metavar="A,B", help="binary task on digits A (→0) and B (→1) only")
    _add_run_options(p.add_argument_group("data and run"))


def _add_run_options(d) -> None:
    d.add_argument("--seed", type=non_negative_int, default=0)
    d.add_argument("--device", type=device_name, help="auto (CUDA when present; default), cpu, cuda")
    d.add_argument("--data-root", help="folder holding MNIST/raw/ (default: $NNREF_DATA_ROOT, else ./data)")
    d.add_argument("--no-download", dest="download", action="store_false", help="never download MNIST")
    d.add_argument("--val-size", type=non_negative_int, default=5000,
                   help="last N training images held out for validation (default 5000)")
    d.add_argument("--limit-train", type=positive_int, metavar="N", help="train on the first N images only")
    d.add_argument("--logdir", default="runs", help="TensorBoard log folder (default runs)")
    d.add_argument("--run-name", help="run folder name (default <model>-<timestamp>)")
    d.add_argument("--checkpoint-every", type=non_negative_int, default=0, metavar="STEPS",
                   help="also checkpoint every N steps inside an epoch (default: after every epoch only)")
    d.add_argument("--log-every", type=positive_int, default=50, metavar="STEPS",
                   help="steps between loss/train_step points")
    d.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="on a GPU, run every step eagerly instead of replaying a CUDA graph of forward+backward")
    d.add_argument("--resume", metavar="PATH|auto",
                   help="continue the run of this checkpoint.pt; auto: <logdir>/<run-name>/checkpoint.pt when it "
                        "exists, else start fresh (for torchrun --max-restarts)")
    d.add_argument("--dry-run", action="store_true", help="load data, build the model, one step; write nothing")
    d.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")


def _add_playground_options(p: argparse.ArgumentParser) -> None:
    from .layers import ACTIVATIONS
    from .playground import DATASETS, MODELS, PlaygroundConfig

    d = PlaygroundConfig()
    p.add_argument("--dataset", choices=DATASETS + ("all",), default="all")
    p.add_argument("--model", choices=MODELS + ("all",), default="all")
    p.add_argument("--samples", type=positive_int, default=400)
    p.add_argument("--noise", type=non_negative_float, default=None,
                   help="std of the Gaussian jitter (default per dataset)")
    p.add_argument("--test-fraction", type=fraction, default=0.3)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--hidden", type=int_list, default=d.hidden, help="MLP hidden sizes (default 8,8)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default=d.activation)
    p.add_argument("--k", type=int_list, default=d.k, help="KNN k values (default 1,5,15)")
    p.add_argument("--steps", type=positive_int, default=d.steps, help=f"gradient-descent steps (default {d.steps})")
    p.add_argument("--lr", type=positive_float, default=d.lr, help=f"default {d.lr}")
    p.add_argument("--momentum", type=non_negative_float, default=d.momentum, help=f"default {d.momentum}")
    p.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay, help=f"default {d.weight_decay}")
    p.add_argument("--restarts", type=positive_int, default=d.restarts,
                   help=f"MLP: random starts, the lowest training loss is kept (default {d.restarts})")
    p.add_argument("--batch-size", type=non_negative_int, default=d.batch_size, help="0 = full batch (default)")
    p.add_argument("--snapshots", type=positive_int, default=d.snapshots, help="boundary pictures per run (default 10)")
    p.add_argument("--logdir", default="runs")
    p.add_argument("--run-name")
    p.add_argument("--save-png", metavar="DIR", help="also write the final pictures as PNG files here")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="write no event files")
    p.add_argument("--seeds", type=positive_int, metavar="N",
                   help="measure seeds 0..N-1 (data, split and weights follow the seed): a table of the mean and "
                        "the minimum test accuracy, no pictures")
    p.add_argument("--json", metavar="PATH", help="with --seeds: also write every accuracy here")
    p.add_argument("--quiet", action="store_true")


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    from .bench import SECTIONS

    p.add_argument("--device", type=device_name, default="cpu", help="cpu (default) or cuda")
    p.add_argument("--data-root", help="folder holding MNIST/raw/ (default: $NNREF_DATA_ROOT, else ./data)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--out", default="runs/bench", help="folder for JSON and PNG output")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (a smoke test)")
    p.add_argument("--repeats", type=positive_int, default=7)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnref", description="The lecture's neural networks, verified.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train a model on MNIST (logreg, softmax, mlp, knn)")
    p.add_argument("model", choices=("logreg", "softmax", "mlp", "knn"))
    _add_train_options(p)
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--data-root")
    p.add_argument("--no-download", dest="download", action="store_false")
    p.add_argument("--device", type=device_name, default="auto")
    p = sub.add_parser("predict", help="classify a grayscale digit image with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("image", help="an image file (PNG, JPEG, ...); resized to 28×28")
    p.add_argument("--no-invert", dest="invert", action="store_false",
                   help="do not turn a dark digit on a light background into MNIST's light-on-dark")
    p = sub.add_parser("gradcheck", help="gradcheck, gradgradcheck and the numerical gradient for every Function")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--sweep", action="store_true",
                   help="plot the numerical gradient's error against Δ (forward and central, float32 and float64)")
    p.add_argument("--cost", action="store_true",
                   help="time one numerical gradient against one backward pass (the lecture's \"slow\")")
    p.add_argument("--png", metavar="PATH", help="with --sweep: also write the picture here")
    p.add_argument("--logdir", default="runs", help="with --sweep: TensorBoard folder (default runs)")
    p.add_argument("--json", metavar="PATH", help="with --sweep or --cost: also write the numbers here")
    p = sub.add_parser("runs", help="a table of the runs in a log folder: model, recipe, steps, accuracy, status")
    p.add_argument("--logdir", default="runs", help="the folder to list (default runs)")
    p = sub.add_parser("export", help="write a trained model as ONNX (or a torch.export program)")
    p.add_argument("checkpoint")
    p.add_argument("out", help="output file, e.g. model.onnx or model.pt2")
    p.add_argument("--format", choices=("onnx", "pt2"), help="default: from the file name (.pt2 → pt2, else onnx)")
    _add_playground_options(sub.add_parser("playground", help="the lecture's 2-D playground in TensorBoard"))
    _add_bench_options(sub.add_parser("bench", help="benchmarks: nnref against PyTorch's built-ins"))
    return parser


# --------------------------------------------------------------------------------------------------
# Commands: call the library, print what it returns
# --------------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from .config import TrainConfig
    from .train import train

    opts = {k: v for k, v in vars(args).items() if k not in ("command", "argv")}
    train(TrainConfig(**opts, command=shlex.join(["nnref", *args.argv])), console=_print)
    return 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, args.data_root, args.download, args.device)
    k = f" (k = {r.k}, chosen on validation)" if r.k is not None else ""
    print(f"{r.model} checkpoint {args.checkpoint}{k}\ntest accuracy: {r.accuracy:.2%} ({r.correct}/{r.total})\n\n"
          f"confusion matrix (rows: true class, columns: predicted class)\n"
          f"{format_confusion(r.confusion, r.class_names)}")
    return 0


def format_confusion(matrix, names: list[str]) -> str:
    width = max(6, *(len(n) + 1 for n in names))
    head = "true\\pred".ljust(10) + "".join(n.rjust(width) for n in names)
    rows = [names[t].ljust(10) + "".join(str(int(v)).rjust(width) for v in matrix[t]) for t in range(len(names))]
    return "\n".join([head, *rows])


def cmd_predict(args) -> int:
    from pathlib import Path

    from .evaluate import predict_image

    p = predict_image(args.checkpoint, args.image, invert=args.invert)
    print(f"{Path(args.image).name}: predicted {p.class_names[p.best]} ({p.probabilities[p.best]:.1%})")
    for name, prob in zip(p.class_names, p.probabilities):
        print(f"  {name:>6}  {prob:7.2%}  {'#' * round(prob * 40)}")
    return 0


def cmd_export(args) -> int:
    from .export import export_checkpoint

    fmt = args.format or ("pt2" if str(args.out).endswith(".pt2") else "onnx")
    path = export_checkpoint(args.checkpoint, args.out, fmt)
    print(f"wrote {path} ({fmt}): rows x (n, 784) normalised like MNIST in training → logits")
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import check_functions, format_table

    if args.sweep:
        return _gradcheck_sweep(args)
    if args.cost:
        return _gradcheck_cost(args)
    results = check_functions(seed=args.seed)
    print(format_table(results))
    failed = [r.name for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _gradcheck_sweep(args) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from torch.utils.tensorboard import SummaryWriter

    from . import viz
    from .gradcheck import best_deltas, delta_sweep

    points = delta_sweep(seed=args.seed)
    table = "| difference | dtype | best Δ | max relative error there |\n|---|---|---|---|\n" + "\n".join(
        f"| {p.method} | {p.dtype} | {p.delta:.1e} | {p.error:.1e} |" for p in best_deltas(points))
    print(table)
    fig = viz.delta_sweep_figure(points)
    with SummaryWriter(str(Path(args.logdir) / "gradcheck-sweep")) as writer:
        writer.add_figure("gradcheck/delta_sweep", fig, 0, close=False)
        writer.add_text("gradcheck/best_delta", table, 0)
    if args.png:
        fig.savefig(args.png, dpi=110)
        print(f"wrote {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(p) for p in points], indent=1))
    print(f"TensorBoard: tensorboard --logdir {Path(args.logdir) / 'gradcheck-sweep'}")
    return 0


def _gradcheck_cost(args) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from .gradcheck import numerical_cost

    rows = numerical_cost(seed=args.seed)
    print("| model | parameters | one backward pass | one numerical gradient (forward differences) | ratio |\n"
          "|---|---|---|---|---|")
    for r in rows:
        how = "" if r.measured_parameters == r.parameters else \
            f" (timed on {r.measured_parameters:,} parameters, extrapolated)"
        print(f"| {r.model} | {r.parameters:,} | {r.backward_seconds * 1e3:.2f} ms | {r.numerical_seconds:,.2f} s{how} "
              f"| {r.ratio:,.0f}× |")
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) | {"ratio": r.ratio} for r in rows], indent=1))
    return 0


def cmd_runs(args) -> int:
    from .runs import list_runs

    rows = list_runs(args.logdir)
    if not rows:
        print(f"no runs in {args.logdir}")
        return 0
    print("| run | model | recipe | steps | val acc | test acc | status |\n|---|---|---|---|---|---|---|")
    for r in rows:
        acc = [f"{a:.2%}" if isinstance(a, float) and a == a else "—" for a in (r.val_acc, r.test_acc)]
        print(f"| {r.name} | {r.model} | {r.recipe} | {r.steps if r.steps is not None else '—'} | {acc[0]} | "
              f"{acc[1]} | {r.status} |")
    return 0


def cmd_playground(args) -> int:
    from .playground import DATASETS, MODELS, PlaygroundConfig, run

    cfg = PlaygroundConfig(steps=args.steps, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                           restarts=args.restarts, batch_size=args.batch_size, hidden=args.hidden,
                           activation=args.activation, k=args.k, snapshots=args.snapshots, seed=args.seed)
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    models = MODELS if args.model == "all" else (args.model,)
    if args.seeds:
        return _playground_seeds(args, cfg, datasets, models)
    report = None if args.quiet else _print_playground_row
    result = run(datasets, models, args.samples, args.noise, args.test_fraction, cfg, args.logdir, args.run_name,
                 args.save_png, tensorboard=args.tensorboard, on_dataset=report)
    if not args.quiet and args.tensorboard:
        print(f"TensorBoard: tensorboard --logdir {result['run_dir']}")
    return 0


def _playground_seeds(args, cfg, datasets, models) -> int:
    import json
    import statistics

    from .playground import over_seeds

    def progress(seed, results):
        if not args.quiet:
            _print(f"seed {seed}: " + "; ".join(f"{ds} " + " ".join(f"{m} {a:.1%}" for m, a in results[ds].items())
                                                 for ds in datasets))

    table = over_seeds(range(args.seeds), datasets, models, args.samples, args.noise, args.test_fraction, cfg,
                       on_seed=progress)
    columns = list(next(iter(table.values())))
    print(f"\ntest accuracy over seeds 0-{args.seeds - 1}: mean (minimum)\n")
    print("| dataset | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for ds, row in table.items():
        print(f"| {ds} | " + " | ".join(f"{statistics.mean(row[c]):.1%} ({min(row[c]):.1%})" for c in columns) + " |")
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps({"seeds": list(range(args.seeds)), "config": vars(cfg),
                                               "accuracy": table}, indent=1, default=list))
    return 0


def _print_playground_row(dataset: str, accuracies: dict) -> None:
    _print(f"{dataset:8s} " + "  ".join(f"{m}: {a:.1%}" for m, a in accuracies.items()))


def cmd_bench(args) -> int:
    from .bench import SECTIONS, run_bench

    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench sections {sorted(unknown)}; choose from {sorted(SECTIONS)}")
    run_bench(args.device, args.data_root, sections, args.out, args.quick, args.repeats, progress=_print)
    return 0


def _print(message: str) -> None:
    print(message, flush=True)


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict, "export": cmd_export,
            "gradcheck": cmd_gradcheck, "runs": cmd_runs, "playground": cmd_playground, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("nnref: interrupted; the last checkpoint (if any) is intact", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("NNREF_DEBUG"):
            raise
        from .config import TrainingError
        from .data import DataError

        known = isinstance(exc, (DataError, TrainingError, ValueError, TypeError, OSError))
        prefix = "" if known else f"unexpected {type(exc).__name__}: "
        print(f"nnref {args.command}: error: {prefix}{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
