"""The ``nnref`` command line: train, eval, predict, gradcheck, playground, bench.

Exit codes: 0 success, 2 usage errors (argparse), 1 every other failure — always a one-paragraph
message on stderr, never a raw traceback (set ``NNREF_DEBUG=1`` to see one).
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
    import torch

    if text not in ("auto", "cpu") and not (text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} was asked for, but PyTorch sees no CUDA GPU on this machine "
                                         "(use cpu or auto)")
    return text


# --------------------------------------------------------------------------------------------------
def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .layers import ACTIVATIONS
    from .models import METRICS

    g = p.add_argument_group("optimisation (defaults depend on the model; see README)")
    g.add_argument("--epochs", type=positive_int, help="passes over the training set")
    g.add_argument("--lr", type=positive_float, help="step size α of w ← w − α ∂L/∂w")
    g.add_argument("--batch-size", type=positive_int, help="1 is the lecture's per-instance SGD")
    g.add_argument("--momentum", type=non_negative_float, help="SGD momentum (0 = plain gradient descent)")
    g.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="L2 penalty (default 0)")
    g.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine: α decays to 0 over the run (default); constant: α throughout")
    g.add_argument("--loss", choices=("fused", "unfused"), default="fused",
                   help="fused: stable loss from logits (default); unfused: the lecture's activation → "
                        "cross-entropy on probabilities")
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=int_list, default=(800,), help="MLP hidden sizes, e.g. 800 or 300,100")
    m.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu", help="MLP hidden activation")
    m.add_argument("--k", type=int_list, default=(3,), help="KNN neighbours, one or a list such as 1,3,5")
    m.add_argument("--metric", choices=METRICS, default="euclidean", help="KNN distance")
    t = m.add_mutually_exclusive_group()
    t.add_argument("--positive-class", type=digit, metavar="K",
                   help="binary task: label 1 for digit K, 0 otherwise (logreg default: 0)")
    t.add_argument("--classes", type=digit_pair, metavar="A,B", help="binary task on digits A (→0) and B (→1) only")
    d = p.add_argument_group("data and run")
    d.add_argument("--seed", type=non_negative_int, default=0)
    d.add_argument("--device", type=device_name, default="auto", help="auto (CUDA when present), cpu, cuda")
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
    d.add_argument("--resume", metavar="PATH", help="continue the run of this checkpoint.pt")
    d.add_argument("--dry-run", action="store_true", help="load data, build the model, one step; write nothing")
    d.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")


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

    from . import playground

    playground.add_arguments(sub.add_parser("playground", help="the lecture's 2-D playground in TensorBoard"))

    from . import bench

    bench.add_arguments(sub.add_parser("bench", help="benchmarks: nnref against PyTorch's built-ins"))
    return parser


# --------------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from .train import TrainConfig, train

    opts = {k: v for k, v in vars(args).items() if k not in ("command", "argv")}
    train(TrainConfig(**opts, command=shlex.join(["nnref", *args.argv])))
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import check_functions, format_table

    results = check_functions(seed=args.seed)
    print(format_table(results))
    failed = [r.name for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_eval(args) -> int:
    from .evaluate import evaluate_checkpoint

    return evaluate_checkpoint(args.checkpoint, args.data_root, args.download, args.device)


def cmd_predict(args) -> int:
    from .evaluate import predict_image

    return predict_image(args.checkpoint, args.image, invert=args.invert)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    handlers = {"train": cmd_train, "gradcheck": cmd_gradcheck, "eval": cmd_eval, "predict": cmd_predict}
    if args.command == "playground":
        from .playground import run_cli as handler
    elif args.command == "bench":
        from .bench import run_cli as handler
    else:
        handler = handlers[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("nnref: interrupted; the last checkpoint (if any) is intact", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("NNREF_DEBUG"):
            raise
        from .data import DataError
        from .train import TrainingError

        known = isinstance(exc, (DataError, TrainingError, ValueError, TypeError, OSError))
        prefix = "" if known else f"unexpected {type(exc).__name__}: "
        print(f"nnref {args.command}: error: {prefix}{exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
