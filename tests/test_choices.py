"""nnref.choices: what can be chosen, by name, torch-free — each name has its implementation, and the one check of
a dataset's class count."""

from __future__ import annotations

import pytest

from nnref import choices


@pytest.mark.lecture
def test_every_name_in_choices_has_its_implementation():
    from nnref import choices as settings
    from nnref import layers, plane
    from nnref.knn import KNNClassifier

    assert tuple(layers.ACTIVATIONS) == settings.ACTIVATIONS
    for metric in settings.METRICS:
        KNNClassifier(metric=metric)
    for name in settings.DATASETS:
        for classes in settings.CLASSES[name]:
            assert plane.make_points(name, 40, classes=classes)[1].unique().numel() == classes
    assert plane.features(plane.make_points("xor", 8)[0], settings.FEATURES).shape == (8, len(settings.FEATURES))


@pytest.mark.lecture
def test_the_class_count_check_names_the_counts_a_dataset_has():
    for dataset, counts in choices.CLASSES.items():
        for classes in range(1, 6):
            if classes in counts:
                choices.check_classes(dataset, classes)
            else:
                with pytest.raises(ValueError, match=f"{dataset} has .* classes, not {classes}"):
                    choices.check_classes(dataset, classes)
    choices.check_classes("own", 3)  # a page's own points take any count


@pytest.mark.lecture
def test_the_plane_and_the_labs_messages_ask_the_same_check():
    from nnref import plane
    from nnref.lab.state import BadMessage, check_state

    with pytest.raises(ValueError, match="xor has 2 or 4 classes, not 3"):
        plane.make_points("xor", 40, classes=3)
    with pytest.raises(BadMessage, match="xor has 2 or 4 classes, not 3"):
        check_state({"dataset": "xor", "classes": 3})
