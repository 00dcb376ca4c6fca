"""Write the backward yourself: the starting kit of exercises, and the checker of a student's Functions.

The package: :mod:`.kit` (the kit's files), :mod:`.loading` (a student's file), :mod:`.checking` (each Function
against nnref's), :mod:`.own_work` (is it the student's?), :mod:`.isolation` (each check in a process of its own,
under a time and memory limit), :mod:`.reports` (what a check says: the table, JSON, Gradescope's results.json),
:mod:`.autograder` (what a teacher uploads to Gradescope), :mod:`.student` (a student's Functions at work in
nnref).

:func:`write_kit` writes ``my_functions.py`` (the nine Functions, forward written out, every ``backward`` raising
``NotImplementedError`` under a docstring that says what to derive) and ``README.md`` into a folder.
:func:`check_file` imports a student's file and checks each of the nine Functions it defines on its own
against nnref's, each in a process of its own: one :class:`FunctionReport` per Function, in the lecture's order,
whose message names every wrong gradient — where, by how much, and (with ``hints="formula"``) the formula it
should follow — with one :class:`GradientReport` per gradient.  :func:`check_function` is the same check for one
class (Otter-Grader's and nbgrader's test cells call it).  Nothing here prints or exits: the command line (``nnref
exercises``, ``nnref gradcheck --functions``) formats what these functions return.  What is checked is
:mod:`.checking`'s docstring.  Notation: n instances, p features, c classes / units, N the elements of a tensor,
g the gradient backward receives.
"""

from .autograder import AUTOGRADER_FILES, write_autograder
from .checking import NAMES, SHAPES, check_classes, check_file, check_function, check_here
from .kit import KIT_FILES, kit_text, write_kit
from .loading import StudentFileError, load_functions
from .reports import (
    HINTS,
    STATUSES,
    VISIBILITIES,
    FunctionReport,
    GradientReport,
    format_reports,
    gradescope_results,
    report_json,
)
from .student import StudentFunctions, functions_in_use, functions_used, use_functions

__all__ = [
    "AUTOGRADER_FILES",
    "HINTS",
    "KIT_FILES",
    "NAMES",
    "SHAPES",
    "STATUSES",
    "VISIBILITIES",
    "FunctionReport",
    "GradientReport",
    "StudentFileError",
    "StudentFunctions",
    "check_classes",
    "check_file",
    "check_function",
    "check_here",
    "format_reports",
    "functions_in_use",
    "functions_used",
    "gradescope_results",
    "kit_text",
    "load_functions",
    "report_json",
    "use_functions",
    "write_autograder",
    "write_kit",
]
