"""The hp adapters: Keras Tuner's signatures, defaults, validation, Optuna mapping."""

from __future__ import annotations

import optuna
import pytest

from search.backends.optuna import OptunaHP
from search.errors import SpaceError
from search.hp import DefaultHP, FixedHP, ParamSpec, RecordingHP


def space(hp):  # type: ignore[no-untyped-def]
    units = hp.Int("units", 32, 512, step=32, default=64)
    lr = hp.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-3)
    act = hp.Choice("act", ["relu", "tanh"])
    extra = hp.Int("extra", 1, 3) if hp.Boolean("deep") else None
    hp.Fixed("loss", "mse")
    return units, lr, act, extra


def test_default_point_and_keras_tuner_defaults() -> None:
    hp = DefaultHP()
    assert space(hp) == (64, 1e-3, "relu", None)
    assert hp.values == {"units": 64, "lr": 1e-3, "act": "relu", "deep": False, "loss": "mse"}
    assert DefaultHP().Int("x", 3, 9) == 3  # Keras Tuner: default is min_value
    assert DefaultHP().Float("y", 0.5, 1.0) == 0.5


def test_recording_and_grids() -> None:
    hp = RecordingHP()
    space(hp)
    assert list(hp.specs) == ["units", "lr", "act", "deep", "loss"]
    assert hp.specs["units"].grid() == list(range(32, 513, 32))
    assert hp.specs["units"].is_discrete() and not hp.specs["lr"].is_discrete()
    assert ParamSpec("f", "float", 0.0, 0.0, 0.5, 0.1).grid() == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(SpaceError):
        hp.specs["lr"].grid()


def test_fixed_hp_takes_branch_and_checks_range() -> None:
    hp = FixedHP({"deep": True, "extra": 3, "units": 96})
    assert space(hp) == (96, 1e-3, "relu", 3)
    with pytest.raises(SpaceError, match="outside the space's range"):
        space(FixedHP({"act": "gelu"}))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda hp: hp.Int("a", 5, 1), "min_value 5 > max_value 1"),
        (lambda hp: hp.Float("a", 0.0, 1.0, sampling="log"), "log sampling needs min_value > 0"),
        (lambda hp: hp.Choice("a", []), "must not be empty"),
        (lambda hp: hp.Choice("a", [1, 2], default=3), "default 3 is not in"),
        (lambda hp: hp.Int("a", 1, 4, default=9), "outside its range"),
        (lambda hp: (hp.Int("a", 1, 4), hp.Int("a", 1, 8)), "defined twice"),
        (lambda hp: hp.Float("a", 0.0, 1.0, sampling="cubic"), "`sampling` must be"),
    ],
)
def test_invalid_definitions(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpaceError, match=message):
        call(DefaultHP())


def test_optuna_hp_respects_ranges_and_repeats() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        hp = OptunaHP(trial)
        units, lr, act, extra = space(hp)
        assert units % 32 == 0 and 32 <= units <= 512
        assert 1e-4 <= lr <= 1e-1 and act in ("relu", "tanh")
        assert (extra is None) == (not hp.values["deep"])
        assert space(hp) == (units, lr, act, extra)  # same values when built again (folds)
        assert set(trial.params) == set(hp.values) - {"loss"}
        study.tell(trial, 0.0)
