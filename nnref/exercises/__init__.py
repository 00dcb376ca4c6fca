"""Write the backward yourself: the starting kit of exercises, and the checker of a student's Functions.

The package: :mod:`.kit` (the kit's files), :mod:`.loading` (a student's file), :mod:`.checking` (each Function
against nnref's), :mod:`.reports` (what a check says), :mod:`.student` (a student's Functions at work in nnref).

:func:`write_kit` writes ``my_functions.py`` (the nine Functions, forward written out, every ``backward`` raising
``NotImplementedError`` under a docstring that says what to derive) and ``README.md`` into a folder.
:func:`check_file` imports a student's file and checks each of the nine Functions it defines on its own
against nnref's: one :class:`FunctionReport` per Function, in the lecture's order, whose message names the
first check that failed — which gradient, the largest error and where, the shapes, and the formula it should
follow.  Nothing here prints or exits: the command line (``nnref exercises``, ``nnref gradcheck --functions``)
formats what these functions return.

What a Function must pass, in this order (the first failure is the row's message):

1. its forward equals nnref's, on every case below;
2. its backward returns one gradient per input of forward, and for every input that needs one a tensor of the
   input's shape and dtype, equal to nnref's hand-written gradient — on random non-square shapes including a
   batch of one (n = 1), for every reduction of the losses, at extreme inputs (logits of ±50, probabilities near
   0 and 1), and in float32 as well as float64;
3. ``torch.autograd.gradcheck`` (the numerical gradient, float64) on the random shapes.

The student's backward is called directly on the node of its own forward (``output.grad_fn``), so that what it
returns is seen as it returned it (a missing gradient, a transposed one, too many) and what it raises is traced
to its line.  Notation: n instances, p features, c classes / units, N the elements of a tensor, g the gradient
backward receives.
"""

from .checking import NAMES, SHAPES, check_file, check_function
from .kit import KIT_FILES, kit_text, write_kit
from .loading import StudentFileError, load_functions
from .reports import STATUSES, FunctionReport, format_reports, report_json
from .student import StudentFunctions, functions_in_use, use_functions

__all__ = [
    "KIT_FILES",
    "NAMES",
    "SHAPES",
    "STATUSES",
    "FunctionReport",
    "StudentFileError",
    "StudentFunctions",
    "check_file",
    "check_function",
    "format_reports",
    "functions_in_use",
    "kit_text",
    "load_functions",
    "report_json",
    "use_functions",
    "write_kit",
]
