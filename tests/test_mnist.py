"""On the real MNIST files (CI sets NNREF_DATA_ROOT=../shared/data and NNREF_REQUIRE_MNIST=1); skipped where they
are absent, except in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.mnist


@pytest.fixture(scope="module")
def root(real_mnist) -> Path:
    return real_mnist


def test_real_files_load_with_expected_statistics(root):
    from nnref.data import load_splits

    s = load_splits(root, download=False)
    assert s.train_x.shape == (55000, 784) and s.val_x.shape == (5000, 784) and s.test_x.shape == (10000, 784)
    full = torch.cat([s.train_x, s.val_x])
    assert abs(float(full.mean())) < 1e-3 and abs(float(full.std()) - 1) < 1e-3  # 0.1307 / 0.3081 normalisation
    assert torch.bincount(s.test_y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_softmax_regression_one_epoch_reaches_90_percent(root, tmp_path):
    from nnref.cli import main
    from nnref.run.checkpoint import load_checkpoint

    assert (
        main(
            [
                "train",
                "softmax",
                "--epochs",
                "1",
                "--data-root",
                str(root),
                "--no-download",
                "--logdir",
                str(tmp_path),
                "--run-name",
                "one-epoch",
                "--quiet",
            ]
        )
        == 0
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "one-epoch"))
    ea.Reload()
    test_acc = ea.Scalars("accuracy/test")[-1].value
    assert test_acc >= 0.90, test_acc
    assert load_checkpoint(tmp_path / "one-epoch" / "checkpoint.pt")["epoch"] == 1


def test_knn_agrees_with_scikit_learn_on_first_1000_test_images(root):
    import sklearn.neighbors as sk  # a dev dependency: its absence is a failure, not a skip

    from nnref.data import load_mnist, normalize
    from nnref.knn import KNNClassifier

    train_images, train_labels = load_mnist(root, train=True, download=False)
    test_images, test_labels = load_mnist(root, train=False, download=False)
    X, Q = normalize(train_images), normalize(test_images[:1000])
    ours = KNNClassifier(3).fit(X, train_labels).predict(Q)
    ref = sk.KNeighborsClassifier(3, algorithm="brute").fit(X.numpy(), train_labels.numpy()).predict(Q.numpy())
    assert ours.tolist() == ref.tolist()
    assert float((ours == test_labels[:1000]).float().mean()) > 0.95
