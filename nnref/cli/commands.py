"""The ``nnref`` commands: each calls the library and prints what it returns (a command imports what it needs when
it runs, so that the parser answers at once)."""

from __future__ import annotations

import argparse
import shlex
import sys


# --------------------------------------------------------------------------------------------------
# Commands: call the library, print what it returns
# --------------------------------------------------------------------------------------------------
def cmd_train(args, parser: argparse.ArgumentParser) -> int:
    """The model picks the program and the options it takes (:mod:`nnref.run.launch`)."""
    from ..run import launch

    options = {k: v for k, v in vars(args).items() if k not in ("command", "argv", "model") and v is not None}
    foreign = launch.foreign_options(args.model, options)
    if foreign:
        train = _subparser(parser, "train")
        flags = {a.dest: a.option_strings[0] for a in train._actions if a.option_strings}
        names = [flags.get(f, f) for f in foreign]
        train.error(
            f"{', '.join(names)} {'does' if len(names) == 1 else 'do'} not apply to {args.model} "
            "(see nnref train --help)"
        )
    launch.train(args.model, {**options, "command": shlex.join(["nnref", *args.argv])}, console=_print)
    return 0


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def cmd_eval(args, parser) -> int:
    from ..run.evaluate import evaluate_checkpoint

    r = evaluate_checkpoint(args.checkpoint, args.data_root, args.download, args.device)
    k = f" (k = {r.k}, chosen on validation)" if r.k is not None else ""
    print(
        f"{r.model} checkpoint {args.checkpoint}{k}\ntest accuracy: {r.accuracy:.2%} ({r.correct}/{r.total})\n\n"
        f"confusion matrix (rows: true class, columns: predicted class)\n"
        f"{format_confusion(r.confusion, r.class_names)}"
    )
    return 0


def format_confusion(matrix, names: list[str]) -> str:
    width = max(6, *(len(n) + 1 for n in names))
    head = "true\\pred".ljust(10) + "".join(n.rjust(width) for n in names)
    rows = [names[t].ljust(10) + "".join(str(int(v)).rjust(width) for v in matrix[t]) for t in range(len(names))]
    return "\n".join([head, *rows])


def cmd_predict(args, parser) -> int:
    """One line per picture (its prediction and probability), or --json; exit 1 when any picture had no digit or
    could not be read (each says why)."""
    import json

    from ..run.evaluate import predict_pictures, save_inputs

    results = predict_pictures(args.checkpoint, args.image, args.invert, args.data_root, args.download)
    if not results:
        raise ValueError(f"no pictures in {', '.join(args.image)} (looked for {', '.join(_suffixes())})")
    if args.show_input:
        save_inputs(results, args.show_input)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
    for r in results:
        if r.error:
            print(f"nnref predict: {r.source}: {r.error}", file=sys.stderr)
        elif not args.json:
            print(f"{r.source}: {r.class_names[r.best]} ({r.probabilities[r.best]:.1%})")
    return 1 if any(r.error for r in results) else 0


def _suffixes() -> tuple[str, ...]:
    from ..digits import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def cmd_export(args, parser) -> int:
    from ..run.export import export_checkpoint

    fmt = args.format or ("pt2" if str(args.out).endswith(".pt2") else "onnx")
    path = export_checkpoint(args.checkpoint, args.out, fmt)
    print(f"wrote {path} ({fmt}): rows x (n, 784) normalised like MNIST in training → logits")
    return 0


def cmd_gradcheck(args, parser) -> int:
    usage = _subparser(parser, "gradcheck").error
    if args.png and not args.sweep:
        usage("--png draws the Δ sweep: use it with --sweep")
    if args.json and not (args.sweep or args.cost or args.functions):
        usage("--json writes the numbers of --sweep, --cost or --functions: use it with one")
    grading = [f"--{name}" for name in _GRADING if getattr(args, name) is not None]
    if (args.only or grading) and not args.functions:
        usage(f"{(['--only'] if args.only else grading)[0]} goes with --functions FILE (a student's file)")
    if args.functions and (args.sweep or args.cost):
        usage("--functions checks a student's file: not with --sweep or --cost")
    if args.functions:
        if args.format and not args.json:
            usage("--format says what --json writes: use it with --json PATH (or --json - for standard output)")
        return _gradcheck_functions(args, usage)
    if args.sweep:
        return _gradcheck_sweep(args)
    if args.cost:
        return _gradcheck_cost(args)
    return _gradcheck_own(args)


#: The options of a grading (``gradcheck --functions``), which mean nothing without a student's file.
_GRADING = ("hints", "timeout", "memory", "format", "points", "visibility")


def _gradcheck_own(args) -> int:
    """nnref's own Functions; in a folder that holds a kit, a note that these were not the student's."""
    from pathlib import Path

    from ..gradcheck import check_functions
    from ..run.gradcheck_report import format_table

    results = check_functions(seed=args.seed or 0)
    print(format_table(results))
    failed = [r.name for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    kits = [p for p in (Path("my_functions.py"), *Path().glob("*/my_functions.py")) if p.is_file()]
    if kits:
        print(
            f"\nThese are nnref's own Functions, not the ones in {kits[0]}: to check yours, run\n"
            f"    nnref gradcheck --functions {kits[0]}"
        )
    return 1 if failed else 0


def _gradcheck_functions(args, usage) -> int:
    """A student's Functions, each checked on its own, in a process of its own: exit 0 when all pass, 1 otherwise,
    2 when FILE cannot be loaded (said as FILE:LINE: what, without a traceback) or the report cannot be written —
    the report is written in every case it can be."""
    import json
    import time

    from ..exercises import check_file, format_reports, gradescope_results, report_json

    start = time.perf_counter()
    memory = (args.memory or 2048) * 2**20
    try:
        reports = check_file(
            args.functions, only=args.only, hints=args.hints or "formula", timeout=args.timeout or 10.0, memory=memory
        )
        if args.format == "gradescope":
            points = _points(args.points)
            data = gradescope_results(reports, points, args.visibility or "visible", time.perf_counter() - start)
        else:
            data = report_json(reports)
    except ValueError as exc:  # an unknown name in --only or --points
        usage(str(exc))
    if args.json != "-":
        print(format_reports(reports))
    not_loaded = any(r.status == "not loaded" for r in reports)
    if not_loaded:
        print(f"nnref gradcheck: {reports[0].message}", file=sys.stderr)
    if args.json:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                with open(args.json, "w", encoding="utf-8") as out:
                    out.write(text)
            except OSError as exc:
                print(f"nnref gradcheck: cannot write the report to {args.json}: {exc.strerror}", file=sys.stderr)
                return 2
    if not_loaded:
        return 2
    return 0 if all(r.passed for r in reports) else 1


def _points(points):
    """--points with each Function's name as the lecture writes it ("linear" → "LinearFunction")."""
    if not isinstance(points, dict):
        return points
    from ..formulas import by_name

    try:
        return {by_name(name).function.__name__: value for name, value in points.items()}
    except KeyError as exc:
        raise ValueError(f"--points: {exc.args[0]}") from None


def cmd_exercises(args, parser) -> int:
    usage = _subparser(parser, "exercises").error
    if (args.dir is None) == (args.autograder is None):
        usage("give DIR (the kit) or --autograder DIR (what a teacher uploads to Gradescope), one of them")
    grading = [f"--{name}" for name in _GRADING if name != "format" and getattr(args, name) is not None]
    if grading and not args.autograder:
        usage(f"{grading[0]} is the autograder's: use it with --autograder DIR")
    if args.autograder:
        return _write_autograder(args, usage)
    from ..exercises import write_kit

    try:
        written = write_kit(args.dir, force=args.force)
    except (FileExistsError, NotADirectoryError) as exc:  # nothing was written
        print(f"nnref exercises: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"next: nnref gradcheck --functions {written[0]}   (see {written[1]})")
    return 0


def _write_autograder(args, usage) -> int:
    from ..exercises import write_autograder

    try:
        written = write_autograder(
            args.autograder,
            hints=args.hints or "where",
            points=_points(args.points),
            visibility=args.visibility or "visible",
            timeout=args.timeout or 10.0,
            memory=args.memory or 2048,
            force=args.force,
        )
    except ValueError as exc:
        usage(str(exc))
    except (FileExistsError, NotADirectoryError) as exc:
        print(f"nnref exercises: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"next: zip the files of {args.autograder} and upload them on Gradescope (see {written[2]})")
    return 0


def _progress_bar(total: int, what: str, unit: str = ""):
    """A tqdm bar on stderr when a person watches (a terminal), else nothing: (update callback, bar)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=what, unit=unit, leave=False, disable=not sys.stderr.isatty())
    return bar.update, bar


def _gradcheck_sweep(args) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from ..gradcheck import delta_sweep, sweep_size
    from ..run.gradcheck_report import sweep_table, write_sweep

    update, bar = _progress_bar(sweep_size(), "numerical gradients (Δ sweep)")
    with bar:
        points = delta_sweep(seed=args.seed or 0, progress=update)
    print(sweep_table(points))
    run_dir = Path(args.logdir or "runs") / "gradcheck-sweep"
    write_sweep(points, run_dir, png=args.png)
    if args.png:
        print(f"wrote {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(p) for p in points], indent=1))
    print(f"TensorBoard: tensorboard --logdir {run_dir}")
    return 0


def _gradcheck_cost(args) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from ..gradcheck import numerical_cost
    from ..run.gradcheck_report import cost_table

    update, bar = _progress_bar(3, "models timed")
    with bar:
        rows = numerical_cost(seed=args.seed or 0, progress=update)
    print(cost_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(r) | {"ratio": r.ratio} for r in rows], indent=1))
    return 0


def cmd_runs(args, parser) -> int:
    from ..run.markdown import markdown_table
    from ..run.runs import list_runs

    logdir = args.logdir or "runs"
    rows = list_runs(logdir)
    if not rows:
        print(f"no runs in {logdir}")
        return 0

    def acc(a):
        return f"{a:.2%}" if isinstance(a, float) and a == a else "—"

    print(
        markdown_table(
            ("run", "kind", "model", "recipe", "steps", "val acc", "test acc", "status"),
            [
                (
                    r.name,
                    r.kind,
                    r.model,
                    r.recipe,
                    r.steps if r.steps is not None else "—",
                    acc(r.val_acc),
                    acc(r.test_acc),
                    r.status,
                )
                for r in rows
            ],
        )
    )
    return 0


def cmd_playground(args, parser) -> int:
    from ..choices import CLASSIFIERS, DATASETS, PlaygroundConfig
    from ..run.playground import run, total_steps

    cfg = PlaygroundConfig(
        steps=args.steps,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        restarts=args.restarts,
        batch_size=args.batch_size,
        hidden=args.hidden,
        activation=args.activation,
        k=args.k,
        snapshots=args.snapshots,
        seed=args.seed or 0,
    )
    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    models = CLASSIFIERS if args.model == "all" else (args.model,)
    if args.seeds:
        return _playground_seeds(args, cfg, datasets, models)
    update, bar = _progress_bar(0 if args.quiet else total_steps(datasets, models, cfg), "gradient descent", " steps")
    with bar:
        result = run(
            datasets,
            models,
            args.samples,
            args.noise,
            args.test_fraction,
            cfg,
            args.logdir or "runs",
            args.run_name,
            args.save_png,
            tensorboard=args.tensorboard,
            on_dataset=None if args.quiet else _print_playground_row,
            on_progress=update,
        )
    if not args.quiet and args.tensorboard:
        print(f"TensorBoard: tensorboard --logdir {result['run_dir']}")
    return 0


def _playground_seeds(args, cfg, datasets, models) -> int:
    import json
    import statistics

    from ..run.markdown import markdown_table
    from ..run.playground import over_seeds, total_steps

    def progress(seed, results):
        if not args.quiet:
            _print(
                f"seed {seed}: "
                + "; ".join(f"{ds} " + " ".join(f"{m} {a:.1%}" for m, a in results[ds].items()) for ds in datasets)
            )

    update, bar = _progress_bar(
        0 if args.quiet else args.seeds * total_steps(datasets, models, cfg), f"{args.seeds} seeds", " steps"
    )
    with bar:
        table = over_seeds(
            range(args.seeds),
            datasets,
            models,
            args.samples,
            args.noise,
            args.test_fraction,
            cfg,
            on_seed=progress,
            on_progress=update,
        )
    columns = list(next(iter(table.values())))
    print(f"\ntest accuracy over seeds 0-{args.seeds - 1}: mean (minimum)\n")
    print(
        markdown_table(
            ("dataset", *columns),
            [
                (ds, *(f"{statistics.mean(row[c]):.1%} ({min(row[c]):.1%})" for c in columns))
                for ds, row in table.items()
            ],
        )
    )
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(
            json.dumps(
                {"seeds": list(range(args.seeds)), "config": vars(cfg), "accuracy": table}, indent=1, default=list
            )
        )
    return 0


def _print_playground_row(dataset: str, accuracies: dict) -> None:
    _print(f"{dataset:8s} " + "  ".join(f"{m}: {a:.1%}" for m, a in accuracies.items()))


def cmd_bench(args, parser) -> int:
    from ..bench import CONTENTS, run_bench

    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(CONTENTS)
    if unknown:
        raise ValueError(f"unknown bench sections {sorted(unknown)}; choose from {list(CONTENTS)}")
    run_bench(args.device, args.data_root, sections, args.out, args.quick, args.repeats, progress=_print, url=args.url)
    return 0


def cmd_lab(args, parser) -> int:
    from ..lab.mnist.dataset import SharedMNIST
    from ..lab.server import is_loopback, serve

    if args.knn_checkpoint and not args.checkpoint:
        _subparser(parser, "lab").error("--knn-checkpoint goes with --checkpoint (the digit page's model)")
    digits = None
    if args.checkpoint:
        from ..lab.digits import DigitsBackend

        digits = DigitsBackend.load(args.checkpoint, args.knn_checkpoint, args.data_root, args.download, say=_print)
    student = None
    if args.functions:
        from ..exercises import StudentFunctions

        student = StudentFunctions.load(args.functions)
        for line in student.describe():
            _print(f"nnref lab: {line}")
    if not is_loopback(args.host) and args.token is None:
        _print("nnref lab: listening beyond this machine: pages and sockets need a token in the addresses below")
    try:
        serve(
            args.host,
            args.port,
            args.token,
            args.open,
            digits,
            say=_print,
            max_sessions=args.max_pages,
            functions=student,
            mnist=SharedMNIST(args.data_root, args.download),
            teacher_token=args.teacher_token,
        )
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        _print("nnref lab: stopped")
    return 0


def _print(message: str) -> None:
    print(message, flush=True)
