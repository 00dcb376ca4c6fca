"""The ``nnref`` command line: train, eval, predict, export, gradcheck, runs, playground, lab, bench.

This package is the only place that parses arguments (:mod:`.parser`), prints (:mod:`.commands`: each command
calls the library and prints what it returns) and picks exit codes (here): 0 success, 2 usage
errors (argparse: the command's own usage, and a suggestion for a misspelt option), 1 every other failure —
always a one-paragraph message on stderr, never a raw traceback (set ``NNREF_DEBUG=1`` to see one) —,
75 a training run stopped by SIGTERM, SIGINT or SIGUSR1 — after writing a resumable checkpoint, or before its first
step (:data:`EXIT_INTERRUPTED`: run the same command again) —, 130 any other command interrupted by Ctrl-C.
Everything it calls returns values or raises.  Options are never abbreviated: ``--epoch`` is an error, not
``--epochs``.

Building the parser imports no torch (``nnref --help`` and a usage error answer at once): the names and defaults it
lists come from torch-free modules (:mod:`nnref.choices`, :mod:`nnref.run.config`, :mod:`nnref.bench`'s
contents); a command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from .commands import (
    _subparser,
    cmd_bench,
    cmd_eval,
    cmd_exercises,
    cmd_export,
    cmd_gradcheck,
    cmd_lab,
    cmd_playground,
    cmd_predict,
    cmd_runs,
    cmd_train,
)
from .parser import build_parser

__all__ = ["main", "build_parser", "EXIT_INTERRUPTED"]

#: A training run stopped by a signal: run the same command again (:mod:`nnref.run.interrupt`).
EXIT_INTERRUPTED = 75


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "predict": cmd_predict,
    "export": cmd_export,
    "gradcheck": cmd_gradcheck,
    "exercises": cmd_exercises,
    "runs": cmd_runs,
    "playground": cmd_playground,
    "bench": cmd_bench,
    "lab": cmd_lab,
}


def main(argv: list[str] | None = None) -> int:
    from ..run import stopsignals

    entry = argv is None  # the process's own command line: the interpreter exits when this returns
    previous = stopsignals.catch_early()  # a stop signal from now on is noted, never raised mid-import
    training = False
    try:
        parser = build_parser()
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        training = args.command == "train" and args.model != "knn"
        if not training:  # only gradient descent gives stop signals a meaning of their own
            stopsignals.release(previous)
        _check_device(args, parser)
        return _run_command(args, argv, parser)
    finally:
        stopsignals.release(previous, ignore=entry and training)


def _check_device(args, parser: argparse.ArgumentParser) -> None:
    """A CUDA device asked for where PyTorch sees none is a usage error (exit 2), said before any work."""
    device = getattr(args, "device", None)
    if device and device.startswith("cuda"):
        from ..run.config import resolve_device

        try:
            resolve_device(device)
        except ValueError as exc:
            _subparser(parser, args.command).error(f"argument --device: {exc}")


def _run_command(args, argv: list[str], parser: argparse.ArgumentParser) -> int:
    args.argv = argv
    try:
        code = COMMANDS[args.command](args, parser)
        sys.stdout.flush()  # a reader that has gone is met here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # `nnref … | head`: the reader has gone; end quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"nnref {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _report(exc, args.command)


def _report(exc: Exception, command: str) -> int:
    """One message on stderr and the exit code: 75 for a run stopped by a signal (with how to resume), 2 for a
    student's file that cannot be loaded, 1 else."""
    if os.environ.get("NNREF_DEBUG"):
        raise exc
    from ..data import DataError
    from ..exercises import StudentFileError
    from ..run.config import TrainingError
    from ..run.interrupt import RunInterrupted

    if isinstance(exc, RunInterrupted):
        print(f"nnref {command}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, StudentFileError):  # a student's file that does not load: FILE:LINE: what, like a usage error
        print(f"nnref {command}: {exc}", file=sys.stderr)
        return 2
    known = isinstance(exc, (DataError, TrainingError, ValueError, TypeError, OSError))
    prefix = "" if known else f"unexpected {type(exc).__name__}: "
    print(f"nnref {command}: error: {prefix}{exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
