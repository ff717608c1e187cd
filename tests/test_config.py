"""Configuration: vocabulary, profiles, coercion, validation and the results key."""

import pytest

from paperlib.serving.config import ConfigError, RunConfig


def test_mistyped_parameter_is_an_error_listing_valid_names():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_params({"dataset": "digits", "epoch": 3})
    msg = str(err.value)
    assert "unknown parameter 'epoch'" in msg and "did you mean 'epochs'" in msg
    assert "dataset" in msg and "scenario" in msg


def test_method_hyperparameters_are_validated_per_method():
    cfg = RunConfig.from_params({"method": "ewc", "lam": "50"})
    assert cfg.hparams["lam"] == 50.0
    with pytest.raises(ConfigError, match="hyper-parameters of method 'finetune'"):
        RunConfig.from_params({"method": "finetune", "lam": 1})
    with pytest.raises(ConfigError, match="unknown method 'bandits'.*did you mean 'bandit'"):
        RunConfig.from_params({"method": "bandits"})


@pytest.mark.parametrize("name,value,fragment", [
    ("seed", "abc", "expects int"),
    ("seed", -1, ">= 0"),
    ("lr", "fast", "expects float"),
    ("dataset", "imagenet", "must be one of"),
    ("batch_size", 0, ">= 1"),
    ("epochs", 2.5, None),
])
def test_values_are_type_and_range_checked(name, value, fragment):
    if fragment is None:
        assert getattr(RunConfig.from_params({name: value}), name) == value
    else:
        with pytest.raises(ConfigError, match=fragment):
            RunConfig.from_params({name: value})


def test_strings_from_cli_are_coerced():
    cfg = RunConfig.from_params({"seed": "3", "old_classes": "0,1,2", "max_train": "none",
                                 "method": "bandit", "neuron_term": "false"})
    assert cfg.seed == 3 and cfg.old_classes == (0, 1, 2) and cfg.max_train is None
    assert cfg.hparams["neuron_term"] is False


def test_profile_sets_defaults_and_explicit_values_override():
    quick = RunConfig.from_params({"dataset": "mnist", "profile": "quick"})
    paper = RunConfig.from_params({"dataset": "mnist", "profile": "paper"})
    assert quick.max_train == 12000 and paper.max_train is None
    assert RunConfig.from_params({"dataset": "mnist", "profile": "paper", "epochs": 1}).epochs == 1


def test_nonsense_combinations_are_rejected():
    with pytest.raises(ConfigError, match="time-ordered"):
        RunConfig.from_params({"dataset": "mnist", "scenario": "stream"})
    with pytest.raises(ConfigError, match="use scenario 'stream'"):
        RunConfig.from_params({"dataset": "elec2", "scenario": "class_incremental"})


def test_key_changes_with_every_parameter():
    base = RunConfig.from_params({"dataset": "digits"})
    keys = {base.key("cpu")}
    for change in ({"seed": 1}, {"lr": 0.01}, {"epochs": 3}, {"method": "replay"}):
        keys.add(base.replace(**change).key("cpu"))
    keys.add(base.key("cuda"))
    assert len(keys) == 6
    assert base.key("cpu") == RunConfig.from_params({"dataset": "digits"}).key("cpu")
