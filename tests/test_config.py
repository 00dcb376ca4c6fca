"""nnref.config: a configuration is resolved once — defaults for a fresh run, the checkpoint's recipe on resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nnref.run.config import (
    DEFAULTS,
    RESUMABLE,
    KNNConfig,
    TrainConfig,
    TrainingError,
    config_from_dict,
    resolve_device,
)


@pytest.mark.parametrize("model", ["logreg", "softmax", "mlp"])
def test_fresh_run_takes_the_models_defaults(model):
    cfg = TrainConfig(model=model).resolve()
    for key, value in DEFAULTS[model].items():
        assert getattr(cfg, key) == value
    assert cfg.device == "auto"
    assert (cfg.positive_class == 0) == (model == "logreg")  # logistic regression is binary by default


def test_given_options_win_over_defaults_and_resolve_does_not_mutate():
    raw = TrainConfig(model="mlp", lr=0.3, epochs=2)
    cfg = raw.resolve()
    assert (cfg.lr, cfg.epochs, cfg.batch_size) == (0.3, 2, DEFAULTS["mlp"]["batch_size"])
    assert raw.batch_size is None and raw.momentum is None  # the input is left as it was


def test_resume_keeps_the_recipe_and_takes_only_the_resumable_options():
    saved = TrainConfig(model="mlp", lr=0.05, epochs=4, hidden=(16,), seed=3, device="cpu").resolve().to_dict()
    asked = TrainConfig(model="mlp", lr=9.0, hidden=(99,), epochs=6, quiet=True, resume="x.pt", seed=7)
    cfg = asked.resolve(saved)
    assert (cfg.lr, cfg.hidden, cfg.seed) == (0.05, (16,), 3)  # the recipe is the checkpoint's
    assert (cfg.epochs, cfg.quiet, cfg.resume, cfg.device) == (6, True, "x.pt", "cpu")  # device: not given, kept


def test_the_resumable_options_are_declared_on_their_fields():
    declared = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("on_resume")}
    assert set(RESUMABLE) == declared
    assert {"epochs", "device", "data_root", "quiet", "resume"} <= declared
    assert not {"lr", "batch_size", "momentum", "hidden", "seed", "model", "loss"} & declared


def test_resume_of_another_model_is_refused():
    saved = TrainConfig(model="softmax").resolve().to_dict()
    with pytest.raises(TrainingError, match="written by a 'softmax' run, it cannot resume a 'mlp' run"):
        TrainConfig(model="mlp", resume="c.pt").resolve(saved)


def test_round_trip_and_binary():
    cfg = TrainConfig(model="logreg", classes=[3, 8], hidden=[5]).resolve()
    assert cfg.classes == (3, 8) and cfg.hidden == (5,) and cfg.binary
    assert TrainConfig.from_dict(cfg.to_dict() | {"unknown_key": 1}) == cfg
    assert not TrainConfig(model="softmax").resolve().binary
    with pytest.raises(ValueError, match="model must be one of"):
        TrainConfig(model="cnn")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="expected|must be auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="PyTorch sees no CUDA GPU"):
            resolve_device("cuda:0")


def test_knn_has_a_configuration_of_its_own_with_only_what_knn_uses():
    cfg = KNNConfig(k=[1, 5]).resolve()
    assert cfg.model == "knn" and cfg.k == (1, 5) and cfg.device == "auto" and cfg.chunk_size == 4096
    names = {f.name for f in dataclasses.fields(KNNConfig)}
    assert not {"lr", "momentum", "epochs", "batch_size", "hidden", "resume"} & names
    assert config_from_dict(cfg.to_dict()) == cfg and isinstance(config_from_dict(cfg.to_dict()), KNNConfig)
    assert isinstance(config_from_dict(TrainConfig(model="mlp").to_dict()), TrainConfig)
    with pytest.raises(ValueError, match="KNNConfig"):
        TrainConfig(model="knn")
    with pytest.raises(TrainingError, match="unknown model 'cnn'"):
        config_from_dict({"model": "cnn"})


def test_hparams_hold_only_the_settings_a_model_has():
    softmax = TrainConfig(model="softmax").resolve().hparams()
    assert "hidden" not in softmax and "activation" not in softmax and softmax["lr"] == 0.1
    mlp = TrainConfig(model="mlp", hidden=(30, 20)).resolve().hparams()
    assert mlp["hidden"] == (30, 20) and mlp["activation"] == "relu"
    assert TrainConfig(model="logreg").resolve().hparams()["positive_class"] == 0
    assert "positive_class" not in softmax and "k" not in mlp
    assert KNNConfig(k=(3, 5)).hparams() == {
        "model": "knn",
        "k": (3, 5),
        "metric": "euclidean",
        "seed": 0,
        "val_size": 5000,
        "limit_train": None,
    }
