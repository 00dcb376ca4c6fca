"""nnref.formulas: each Function described once — every Function has its description, and its own docstrings, the
exercises' messages and nnref gradcheck's rows say what the description says."""

from __future__ import annotations

import pytest

import nnref.functional as F
from nnref.formulas import FORMULAS, by_name

pytestmark = pytest.mark.lecture


def test_every_function_and_plain_function_has_one_formula_in_the_lectures_order():
    assert [e.function for e in FORMULAS] == list(F.FUNCTIONS.values())
    plain = {name for name in F.__all__ if not name[0].isupper()}
    assert {e.name for e in FORMULAS} == plain - {"value_checks"}
    assert {e.plain for e in FORMULAS} == {getattr(F, e.name) for e in FORMULAS}


@pytest.mark.parametrize("entry", FORMULAS, ids=lambda e: e.name)
def test_each_functions_docstrings_state_its_one_formula(entry):
    """The Function's own docstrings say the same forward and the same gradients as its description (so that
    neither can change without the other)."""
    assert entry.forward in entry.function.__doc__
    for arg, (formula, _) in entry.gradients.items():
        assert f"dL/d{arg} = {formula}" in entry.function.backward.__doc__, arg
    assert set(entry.gradients) == {a for a, g in zip(entry.args, entry.grads) if g}
    assert len(entry.args) == len(entry.grads) + entry.loss  # every apply argument; a loss's reduction last


@pytest.mark.parametrize("entry", FORMULAS, ids=lambda e: e.name)
def test_the_example_inputs_have_the_shapes_the_arguments_say(entry):
    inputs = entry.inputs(n=4, c=5, p=3)
    assert len(inputs) == len(entry.grads)
    out = entry.plain(*inputs)
    assert out.shape == (() if entry.loss else (4, 5))


def test_a_gradient_reads_with_its_shape_and_its_reduction():
    assert by_name("linear").gradient("W") == "gᵀ x (c, p)"
    assert (
        by_name("SoftmaxCrossEntropyFunction").gradient("z") == "softmax(z) − onehot(y), times g, ÷ n for 'mean' (n, c)"
    )
    assert by_name("tanh").gradient("z") == "g · (1 − a²), shaped like z"
    assert [by_name(e.function.__name__) for e in FORMULAS] == list(FORMULAS)
    with pytest.raises(KeyError, match="no Function named 'GeluFunction'"):
        by_name("GeluFunction")
