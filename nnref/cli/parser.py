"""The ``nnref`` command's parser: every command, its options and their checks (argparse types reject a bad value
with a clear message: exit 2).  Building it imports no torch: the names and defaults it lists come from torch-free
modules (:mod:`nnref.choices`, :mod:`nnref.run.config`, :mod:`nnref.bench`'s contents)."""

from __future__ import annotations

import argparse
import difflib
import math


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
non_negative_float = _number_type(
    float, "a number", lambda v: math.isfinite(v) and v >= 0, "must be a finite number ≥ 0"
)
fraction = _number_type(float, "a number", lambda v: 0 < v < 1, "must be between 0 and 1")
port_number = _number_type(int, "a port number", lambda v: 0 <= v <= 65535, "must be in 0-65535")


def int_list(text: str) -> tuple[int, ...]:
    """'800' or '300,100' → (800,) or (300, 100); every entry ≥ 1."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected one or more comma-separated sizes such as 800 or 300,100, got {text!r}"
        )
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


def points_spec(text: str) -> float | dict[str, float]:
    """'100' (a total, shared equally) or 'LinearFunction=20,sigmoid=10,…' (each Function's points)."""
    try:
        if "=" not in text:
            value = float(text)
            if not (math.isfinite(value) and value > 0):
                raise ValueError
            return value
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        points = {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a total such as 100 or NAME=POINTS,…, got {text!r}") from None
    if any(not math.isfinite(v) or v < 0 for v in points.values()):
        raise argparse.ArgumentTypeError(f"points must be finite numbers ≥ 0, got {text!r}")
    return points


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N (whether PyTorch sees that GPU is checked after parsing: :func:`_check_device`)."""
    from ..run.config import check_device_name

    try:
        check_device_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("device must be", "expected")) from None
    return text


# --------------------------------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse without abbreviations, and a misspelt option answered with this command's usage and the option
    it most likely meant."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self._subparsers is None:  # the command that has them says what is wrong
            self.error(_unrecognised(self, extras))
        return namespace, extras


def _unrecognised(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    known = [s for action in parser._actions for s in action.option_strings]
    hints = []
    for word in (e for e in extras if e.startswith("-")):
        close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.6)
        if close:
            hints.append(f"{word}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else "")


def _shared(*names: str) -> argparse.ArgumentParser:
    """A parent parser holding the options several commands share, declared once."""
    p = _Parser(add_help=False)
    options = {
        "seed": lambda: p.add_argument("--seed", type=non_negative_int, help="random seed (default 0)"),
        "device": lambda: p.add_argument(
            "--device", type=device_name, help="auto (CUDA when present; default), cpu, cuda or cuda:N"
        ),
        "data-root": lambda: p.add_argument(
            "--data-root", help="folder holding MNIST/raw/ (default: $NNREF_DATA_ROOT, else ./data)"
        ),
        "no-download": lambda: p.add_argument(
            "--no-download",
            dest="download",
            action="store_false",
            help="never download MNIST (fail with the files it expects)",
        ),
        "logdir": lambda: p.add_argument("--logdir", help="TensorBoard log folder (default runs)"),
    }
    for name in names:
        options[name]()
    return p


def _defaults_text() -> str:
    """``nnref train --help``'s epilog: each model's default recipe, read from its configuration."""
    from ..run.config import DEFAULTS, KNNConfig, TrainConfig

    t, k = TrainConfig(model="mlp"), KNNConfig()
    extra = {
        "logreg": "binary task --positive-class 0",
        "mlp": f"--hidden {_sizes(t.hidden)} --activation {t.activation}",
    }
    columns = {
        m: [
            f"{d['epochs']} epochs,",
            f"--lr {d['lr']:g},",
            f"--batch-size {d['batch_size']},",
            f"--momentum {d['momentum']:g}" + ("," if m in extra else ""),
        ]
        for m, d in DEFAULTS.items()
    }
    widths = [max(len(cells[i]) for cells in columns.values()) for i in range(4)]
    lines = [
        (f"  {m:8s} " + " ".join(c.ljust(w) for c, w in zip(cells, widths)) + " " + extra.get(m, "")).rstrip()
        for m, cells in columns.items()
    ]
    lines.append(
        f"  {'knn':8s} --k {_sizes(k.k)} --metric {k.metric} --chunk-size {k.chunk_size} (KNN stores "
        "records — as MNIST's bytes for euclidean: no gradient-descent options)"
    )
    return "\n".join(
        [
            "defaults by model (any option given wins):",
            *lines,
            f"every run: --lr-schedule {t.lr_schedule}, --loss {t.loss}, --amp {t.amp}, --val-size "
            f"{t.val_size}, --seed {t.seed}, --logdir {t.logdir}",
        ]
    )


def _sizes(values) -> str:
    return ",".join(map(str, values))


def _add_train_options(p: argparse.ArgumentParser) -> None:
    """``nnref train``'s options, in three groups.  An option not given is absent (``argparse.SUPPRESS``): the
    model's configuration supplies its default."""
    from ..run.config import KNNConfig, TrainConfig

    t = TrainConfig(model="mlp")
    descent = p.add_argument_group("gradient descent (logreg, softmax, mlp)")
    _add_descent_options(descent, t)
    _add_descent_run_options(descent, t)
    _add_knn_options(p.add_argument_group("k-nearest neighbours (knn)"), KNNConfig())
    _add_run_options(p.add_argument_group("data and run (every model)"), t)


def _add_descent_options(g, t) -> None:
    from ..choices import ACTIVATIONS

    S = argparse.SUPPRESS
    g.add_argument("--epochs", type=positive_int, default=S, help="passes over the training set")
    g.add_argument("--lr", type=positive_float, default=S, help="step size α of w ← w − α ∂L/∂w")
    g.add_argument("--batch-size", type=positive_int, default=S, help="1 is the lecture's per-instance SGD")
    g.add_argument("--momentum", type=non_negative_float, default=S, help="SGD momentum (0 = plain gradient descent)")
    g.add_argument("--nesterov", action="store_true", default=S, help="Nesterov momentum (needs --momentum > 0)")
    g.add_argument(
        "--weight-decay", type=non_negative_float, default=S, help=f"L2 penalty (default {t.weight_decay:g})"
    )
    g.add_argument(
        "--lr-schedule",
        choices=("cosine", "constant"),
        default=S,
        help=f"cosine: α decays to 0 over the run; constant: α throughout (default {t.lr_schedule})",
    )
    g.add_argument(
        "--loss",
        choices=("fused", "unfused"),
        default=S,
        help="fused: stable loss from logits; unfused: the lecture's activation → cross-entropy on "
        f"probabilities (default {t.loss})",
    )
    g.add_argument(
        "--amp",
        choices=("off", "bf16", "fp16"),
        default=S,
        help="mixed precision: matrix products in bfloat16 or float16 under torch.autocast, losses "
        f"and parameters in float32 (fp16: CUDA only, with loss scaling); default {t.amp}",
    )
    g.add_argument(
        "--compile",
        action="store_true",
        default=S,
        help="torch.compile forward and loss (backward: nnref's own, through AOTAutograd)",
    )
    g.add_argument(
        "--hidden", type=int_list, default=S, help=f"MLP hidden sizes, e.g. 300,100 (default {_sizes(t.hidden)})"
    )
    g.add_argument(
        "--activation", choices=ACTIVATIONS, default=S, help=f"MLP hidden activation (default {t.activation})"
    )


def _add_descent_run_options(g, t) -> None:
    """The gradient-descent run's own options: checkpoints, logging, CUDA graphs, a student's Functions, resume."""
    S = argparse.SUPPRESS
    g.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=S,
        metavar="STEPS",
        help="also checkpoint every N steps inside an epoch (default: after every epoch only)",
    )
    g.add_argument(
        "--log-every",
        type=positive_int,
        default=S,
        metavar="STEPS",
        help=f"steps between loss/train_step points (default {t.log_every})",
    )
    g.add_argument(
        "--no-cuda-graphs",
        dest="cuda_graphs",
        action="store_false",
        default=S,
        help="on a GPU, run every step eagerly instead of replaying a CUDA graph of forward+backward",
    )
    g.add_argument(
        "--functions",
        metavar="FILE",
        default=S,
        help="train with the Functions a student wrote in FILE in place of nnref's (each is checked first; one "
        "that fails is used all the same, with a warning)",
    )
    g.add_argument(
        "--resume",
        metavar="PATH|auto",
        default=S,
        help="continue the run of this checkpoint.pt; auto: <logdir>/<run-name>/checkpoint.pt when it "
        "exists, else start fresh (for torchrun --max-restarts and requeued jobs)",
    )


def _add_knn_options(n, k) -> None:
    from ..choices import METRICS

    S = argparse.SUPPRESS
    n.add_argument(
        "--k",
        type=int_list,
        default=S,
        help=f"neighbours, one or a list such as 1,3,5 (the best on validation is kept; default {_sizes(k.k)})",
    )
    n.add_argument(
        "--metric",
        choices=METRICS,
        default=S,
        help=f"distance (default {k.metric}: searched in MNIST's own bytes, exactly; the others on floats)",
    )
    n.add_argument(
        "--chunk-size",
        type=positive_int,
        default=S,
        metavar="N",
        help=f"test images compared with the records at once (memory ∝ N; default {k.chunk_size})",
    )


def _add_run_options(d, t) -> None:
    S = argparse.SUPPRESS
    task = d.add_mutually_exclusive_group()
    task.add_argument(
        "--positive-class",
        type=digit,
        metavar="K",
        default=S,
        help="binary task: label 1 for digit K, 0 otherwise (logreg default: 0)",
    )
    task.add_argument(
        "--classes", type=digit_pair, metavar="A,B", default=S, help="binary task on digits A (→0) and B (→1) only"
    )
    d.add_argument(
        "--val-size",
        type=non_negative_int,
        default=S,
        help=f"last N training images held out for validation (default {t.val_size})",
    )
    d.add_argument("--limit-train", type=positive_int, metavar="N", default=S, help="train on the first N images only")
    d.add_argument("--run-name", default=S, help="run folder name (default <model>-<timestamp>)")
    d.add_argument(
        "--dry-run", action="store_true", default=S, help="load data, build the model, one step; write nothing"
    )
    d.add_argument("--quiet", action="store_true", default=S, help="no progress bar, no per-epoch lines")


def _add_playground_options(p: argparse.ArgumentParser) -> None:
    from ..choices import ACTIVATIONS, CLASSIFIERS, DATASETS, PlaygroundConfig

    d = PlaygroundConfig()
    p.add_argument(
        "--dataset",
        choices=(*DATASETS, "all"),
        default="all",
        help="the 2-D data: two blobs, XOR, circles, spirals, or all four (default)",
    )
    p.add_argument(
        "--model",
        choices=(*CLASSIFIERS, "all"),
        default="all",
        help="logreg (the line), mlp, knn, or all three side by side (default)",
    )
    p.add_argument("--samples", type=positive_int, default=400, help="points per dataset (default 400)")
    p.add_argument(
        "--noise", type=non_negative_float, default=None, help="std of the Gaussian jitter (default per dataset)"
    )
    p.add_argument("--test-fraction", type=fraction, default=0.3, help="share of points held out (default 0.3)")
    p.add_argument("--hidden", type=int_list, default=d.hidden, help=f"MLP hidden sizes (default {_sizes(d.hidden)})")
    p.add_argument(
        "--activation", choices=ACTIVATIONS, default=d.activation, help=f"MLP activation (default {d.activation})"
    )
    p.add_argument("--k", type=int_list, default=d.k, help=f"KNN k values (default {_sizes(d.k)})")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=d.steps,
        help=f"gradient-descent steps (default {d.steps}; in class, 300 with --restarts 1 gives the same "
        "accuracies in a few seconds per dataset)",
    )
    p.add_argument("--lr", type=positive_float, default=d.lr, help=f"default {d.lr}")
    p.add_argument("--momentum", type=non_negative_float, default=d.momentum, help=f"default {d.momentum}")
    p.add_argument("--weight-decay", type=non_negative_float, default=d.weight_decay, help=f"default {d.weight_decay}")
    p.add_argument(
        "--restarts",
        type=positive_int,
        default=d.restarts,
        help=f"MLP: random starts, the lowest training loss is kept (default {d.restarts})",
    )
    p.add_argument(
        "--batch-size", type=non_negative_int, default=d.batch_size, help=f"0 = full batch (default {d.batch_size})"
    )
    p.add_argument(
        "--snapshots", type=positive_int, default=d.snapshots, help=f"boundary pictures per run (default {d.snapshots})"
    )
    p.add_argument("--run-name", help="run folder name (default playground-<timestamp>)")
    p.add_argument("--save-png", metavar="DIR", help="also write the final pictures as PNG files here")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", help="write no event files")
    p.add_argument(
        "--seeds",
        type=positive_int,
        metavar="N",
        help="measure seeds 0..N-1 (data, split and weights follow the seed): a table of the mean and "
        "the minimum test accuracy, no pictures",
    )
    p.add_argument("--json", metavar="PATH", help="with --seeds: also write every accuracy here")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no result lines")


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    from ..bench import CONTENTS

    p.add_argument(
        "--only",
        default=",".join(CONTENTS),
        help="comma-separated sections (default all, in this order): "
        + "; ".join(f"{name}: {what}" for name, what in CONTENTS.items()).replace("%", "%%"),
    )
    p.add_argument("--out", default="runs/bench", help="folder for JSON and PNG output (default runs/bench)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the quick profile: fewer repetitions and smaller sizes "
        "(a smoke run of a few minutes; the full bench takes ~10)",
    )
    p.add_argument("--repeats", type=positive_int, help="rounds of each side-by-side comparison (default 7, quick 3)")
    p.add_argument("--url", help="classroom: load this running lab (its address, with its token), not a new one")


def _add_predict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a run's checkpoint.pt (any model; KNN votes with the k its run chose)")
    p.add_argument(
        "image",
        nargs="+",
        help="picture files (PNG, JPEG, …) or folders of them; each is prepared as "
        "MNIST's digits were: the ink cropped, scaled into 20×20, centred by its "
        "mass",
    )
    p.add_argument("--json", action="store_true", help="one JSON list of results on stdout, for programs")
    p.add_argument("--show-input", metavar="DIR", help="write the 28×28 input each picture became here, as PNG")
    p.add_argument(
        "--no-invert",
        dest="invert",
        action="store_false",
        help="the pictures are light ink on a dark background already (default: decided per picture)",
    )


def _add_gradcheck_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sweep",
        action="store_true",
        help="plot the numerical gradient's error against Δ (forward and central, float32 and float64; about a minute)",
    )
    p.add_argument(
        "--cost",
        action="store_true",
        help='time one numerical gradient against one backward pass (the lecture\'s "slow"; about 30 s)',
    )
    p.add_argument("--png", metavar="PATH", help="with --sweep: also write the picture here")
    p.add_argument(
        "--functions",
        metavar="FILE",
        help="check the Functions a student wrote in FILE (nnref exercises DIR makes one): a row per Function, "
        "and for a failure which gradient is wrong, by how much and where",
    )
    p.add_argument(
        "--only", metavar="NAME,…", help="with --functions: these Functions only (LinearFunction or linear, …)"
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="with --sweep or --cost: also write the numbers here; with --functions: the report, for a grader "
        "(- for standard output, instead of the table)",
    )
    _add_grading_options(p)


def _add_grading_options(p: argparse.ArgumentParser, autograder: bool = False) -> None:
    """What a teacher chooses when grading (``gradcheck --functions``; baked into ``exercises --autograder``)."""
    default = " (default where)" if autograder else " (default formula)"
    p.add_argument(
        "--hints",
        choices=("formula", "where", "none"),
        help="how much a failure says: the formula it should follow, where it is wrong (gradient, case, factor) but "
        "no formula, or pass/fail per gradient" + default,
    )
    p.add_argument(
        "--timeout", type=positive_float, metavar="S", help="seconds each Function's check may take (default 10)"
    )
    p.add_argument(
        "--memory", type=positive_int, metavar="MIB", help="MiB each Function's check may allocate (default 2048)"
    )
    if not autograder:
        p.add_argument(
            "--format",
            choices=("json", "gradescope"),
            help="what --json writes: nnref's report (json, the default) or Gradescope's results.json",
        )
    p.add_argument(
        "--points",
        type=points_spec,
        metavar="P|NAME=P,…",
        help="Gradescope points: a total shared equally (default 100), or each Function's",
    )
    p.add_argument(
        "--visibility",
        choices=("visible", "hidden", "after_due_date", "after_published"),
        help="who sees each Gradescope test, and when (default visible)",
    )


def _add_lab_options(p: argparse.ArgumentParser) -> None:
    from ..choices import PAGES_PER_CORE, default_max_pages

    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for a classroom, with a token)",
    )
    p.add_argument("--port", type=port_number, default=8765, help="default 8765")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument(
        "--token", help="the students' token: every page and socket needs it (beyond loopback one is made if not given)"
    )
    p.add_argument(
        "--teacher-token",
        help="the teacher's token, for /class and the teacher's actions (made whenever the students' token is)",
    )
    p.add_argument(
        "--max-pages",
        type=positive_int,
        default=default_max_pages(),
        help=f"pages open at once (default {default_max_pages()}: {PAGES_PER_CORE} per core, what this machine serves)",
    )
    p.add_argument(
        "--checkpoint", metavar="CKPT", help="a parametric run's checkpoint.pt: enables the draw-a-digit page"
    )
    p.add_argument(
        "--knn-checkpoint",
        metavar="CKPT",
        help="a KNN run's checkpoint.pt for the digit page's neighbours (default: KNN k=3 over the training "
        "images of --data-root)",
    )
    p.add_argument(
        "--functions",
        metavar="FILE",
        help="train the playground with the Functions a student wrote in FILE (nnref's for the rest)",
    )


def _add_exercises_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", nargs="?", help="the folder to write the kit into (made if needed)")
    p.add_argument("--force", action="store_true", help="overwrite the files if they exist")
    p.add_argument(
        "--autograder",
        metavar="DIR",
        help="instead of the kit, write what a teacher uploads to Gradescope into DIR: setup.sh, run_autograder, "
        "README.md (and this version of nnref); the options below are its grading's",
    )
    _add_grading_options(p, autograder=True)


def _add_export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a parametric run's checkpoint.pt")
    p.add_argument("out", help="output file, e.g. model.onnx or model.pt2")
    p.add_argument("--format", choices=("onnx", "pt2"), help="default: from the file name (.pt2 → pt2, else onnx)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnref", description="The lecture's neural networks, verified.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    run = _shared("seed", "device", "data-root", "no-download", "logdir")
    p = sub.add_parser(
        "train", parents=[run], help="train a model on MNIST (logreg, softmax, mlp, knn)", epilog=_defaults_text()
    )
    p.add_argument(
        "model",
        choices=("logreg", "softmax", "mlp", "knn"),
        help="logreg: the sigmoid neuron (binary); softmax: softmax regression; mlp: a fully connected "
        "network; knn: k-nearest neighbours",
    )
    _add_train_options(p)
    p = sub.add_parser(
        "eval", parents=[_shared("data-root", "no-download")], help="test accuracy and confusion matrix of a checkpoint"
    )
    p.add_argument("checkpoint", help="a run's checkpoint.pt (any model)")
    p.add_argument("--device", type=device_name, default="auto", help="auto (default), cpu, cuda or cuda:N")
    p = sub.add_parser(
        "predict",
        parents=[_shared("data-root", "no-download")],
        help="classify pictures of digits (drawn, photographed, scanned) with a checkpoint",
    )
    _add_predict_options(p)
    p = sub.add_parser(
        "gradcheck",
        parents=[_shared("seed", "logdir")],
        help="gradcheck, gradgradcheck and the numerical gradient for every Function",
    )
    _add_gradcheck_options(p)
    p = sub.add_parser(
        "exercises",
        help="write the starting kit of exercises: the nine Functions, each backward for you to write",
        description="Write DIR/my_functions.py (the nine Functions, forward written out, each backward raising "
        "NotImplementedError under what to derive) and DIR/README.md (the three commands to use next).",
    )
    _add_exercises_options(p)
    p = sub.add_parser(
        "runs",
        parents=[_shared("logdir")],
        help="a table of the runs in a log folder: kind, model, recipe, steps, accuracy, status",
    )
    _add_export_options(sub.add_parser("export", help="write a trained model as ONNX (or a torch.export program)"))
    _add_playground_options(
        sub.add_parser(
            "playground", parents=[_shared("seed", "logdir")], help="the lecture's 2-D playground in TensorBoard"
        )
    )
    p = sub.add_parser(
        "lab",
        parents=[_shared("data-root", "no-download")],
        help="the lecture's demos live in the browser: the playground, drawing a digit, MNIST trained live",
    )
    _add_lab_options(p)
    p = sub.add_parser("bench", parents=[_shared("data-root")], help="benchmarks: nnref against PyTorch's built-ins")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu (default) or cuda")
    _add_bench_options(p)
    return parser
