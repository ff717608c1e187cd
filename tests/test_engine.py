"""The retraining engine: freezing, FLOP accounting, non-finite losses, the store, the CLI,
and every named method end to end on scikit-learn's digits (no mirror needed)."""

import json
import math

import pytest
import torch

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import mlp
from paperlib.engine.plugins import Plugin, RoundContext
from paperlib.engine.retrain import NonFiniteLossError, Retrainer, TrainSettings
from paperlib.engine.samples import NewOnly, SeenData
from paperlib.engine.weights import AllWeights, FixedSubset
from paperlib.method.methods import METHODS, build_method
from paperlib.repro.cli import main as cli_main
from paperlib.serving.runner import run

SMOKE = {"dataset": "digits", "profile": "smoke", "device": "cpu"}


def _round(model, scope, plugins=(), steps=5, round_index=1):
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    meter = ComputeMeter(model, (1, 8, 8))
    ctx = RoundContext(round_index, model, None, Chunk(x, y, "c"), None, SeenData(), torch.device("cpu"),
                       gen, meter)
    cost = Retrainer(TrainSettings(batch_size=16)).run_round(ctx, NewOnly(1), scope, plugins, steps=steps)
    return cost, meter


class GradSpy(Plugin):
    """Records which parameters hold a gradient right before each optimizer step."""

    def __init__(self, model):
        self.model, self.with_grad = model, []

    def before_update(self, step):
        self.with_grad.append({n for n, p in self.model.named_parameters() if p.grad is not None})


def test_frozen_groups_get_no_gradient_and_fewer_flops():
    torch.manual_seed(0)
    model = mlp((1, 8, 8), 10, widths=(32, 16))
    spy = GradSpy(model)
    cost_head, meter = _round(model, FixedSubset(("head",)), [spy])
    assert all(s == {"blocks.head.weight", "blocks.head.bias"} for s in spy.with_grad)
    assert all(p.requires_grad for p in model.parameters()), "requires_grad restored after the round"
    cost_all, _ = _round(model, AllWeights())
    assert cost_head.train_flops < cost_all.train_flops
    # per step: forward 5440*16 + head weight grads 320*16 (no input grads below the head)
    assert cost_head.train_flops == pytest.approx(5 * 16 * (5440 + 320))
    assert cost_head.trainable_fraction == pytest.approx(meter.trainable_fraction(["head"]))
    assert cost_all.trainable_fraction == 1.0


def test_frozen_lower_layers_skip_backward_entirely():
    torch.manual_seed(0)
    model = mlp((1, 8, 8), 10, widths=(32, 16))
    calls = []
    model.blocks["fc1"].register_full_backward_hook(lambda *a: calls.append(1))
    _round(model, FixedSubset(("fc2", "head")), steps=3)
    assert calls == [], "autograd must not reach groups below the lowest trainable one"


class NaNAt(Plugin):
    def __init__(self, step):
        self.step = step

    def penalty(self, step):
        return torch.tensor(float("nan")) if step.step == self.step else None


def test_non_finite_loss_names_round_and_step():
    with pytest.raises(NonFiniteLossError, match=r"round 2, step 3"):
        _round(mlp((1, 8, 8), 10, widths=(8,)), AllWeights(), [NaNAt(3)], round_index=2)


@pytest.mark.parametrize("bad, steps", [(0, 5), (49, 120), (50, 120), (77, 120), (119, 120)])
def test_non_finite_loss_checked_on_the_device_names_the_first_bad_step(bad, steps):
    """The finiteness flag is read every 50 steps and at the round's end (no host sync per
    step), and still names the first bad step, whichever check period it falls in."""
    with pytest.raises(NonFiniteLossError, match=rf"round 1, step {bad}:"):
        _round(mlp((1, 8, 8), 10, widths=(8,)), AllWeights(), [NaNAt(bad)], steps=steps)


class FailsAfterNaN(NaNAt):
    """A later computation that breaks 3 steps after the NaN (``nan=False``: no NaN), before
    the flag is read."""

    def __init__(self, step, nan=True):
        super().__init__(step)
        self.nan = nan

    def penalty(self, step):
        if step.step == self.step + 3:
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return super().penalty(step) if self.nan else None


def test_an_error_caused_by_a_nan_is_reported_as_the_nan():
    with pytest.raises(NonFiniteLossError, match=r"round 1, step 4:"):
        _round(mlp((1, 8, 8), 10, widths=(8,)), AllWeights(), [FailsAfterNaN(4)], steps=30)
    with pytest.raises(RuntimeError, match="probability"):  # no NaN: the error itself
        _round(mlp((1, 8, 8), 10, widths=(8,)), AllWeights(), [FailsAfterNaN(4, False)],
               steps=30)


@pytest.mark.parametrize("method", ["bandit_samples_only", "bandit"])
def test_nan_in_a_bandit_run_is_reported_as_the_nan(tmp_path, monkeypatch, method):
    """A NaN loss reaches the sample bandit's reward scaler (the next step's losses are NaN):
    the scaler refuses it, and the run reports the first non-finite loss, not the scaler."""
    import paperlib.serving.runner as runner_mod

    def with_nan(name, hparams, epochs, seed):
        built = build_method(name, hparams, epochs, seed)
        built.regularizers.append(NaNAtRound(1, 2))
        return built

    monkeypatch.setattr(runner_mod, "build_method", with_nan)
    with pytest.raises(NonFiniteLossError, match="round 1, step 2:") as caught:
        run({**SMOKE, "method": method}, results=tmp_path)
    refused = caught.value.__context__  # what broke first, before the finiteness check
    assert isinstance(refused, ValueError) and "raw reward must be finite" in str(refused)


class NaNAtRound(Plugin):
    """A NaN penalty at one step of one round (a bandit has arms from round 1 on) that
    reaches the weights (its gradient is NaN), so later steps' losses are NaN too."""

    def __init__(self, round_index, step):
        self.round_index, self.step = round_index, step

    def penalty(self, step):
        if (step.round.round_index, step.step) != (self.round_index, self.step):
            return None
        return step.logits.sum() * float("nan")


def test_nan_run_leaves_finished_results_untouched(tmp_path, monkeypatch):
    done = run({**SMOKE, "method": "finetune"}, results=tmp_path)
    before = {p.name: p.read_bytes() for p in done.path.iterdir()}
    import paperlib.serving.runner as runner_mod

    def with_nan(name, hparams, epochs, seed):
        built = build_method(name, hparams, epochs, seed)
        built.regularizers.append(NaNAt(2))
        return built

    monkeypatch.setattr(runner_mod, "build_method", with_nan)
    with pytest.raises(NonFiniteLossError, match="round 0, step 2"):
        run({**SMOKE, "method": "finetune", "seed": 7}, results=tmp_path)
    assert {p.name: p.read_bytes() for p in done.path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == [done.path.name], "no partial run folder"


def test_rerun_is_a_cache_hit_and_parameters_change_the_key(tmp_path):
    first = run({**SMOKE, "method": "finetune"}, results=tmp_path)
    second = run({**SMOKE, "method": "finetune"}, results=tmp_path)
    assert not first.cached and second.cached and second.path == first.path
    assert second.summary == json.loads((first.path / "summary.json").read_text())
    other = run({**SMOKE, "method": "finetune", "seed": 1}, results=tmp_path)
    assert other.path != first.path and not other.cached
    forced = run({**SMOKE, "method": "finetune"}, results=tmp_path, force=True)
    assert not forced.cached and forced.path == first.path


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs(method):
    result = run({**SMOKE, "method": method}, store=False)
    s = result.summary
    assert 0.0 <= s["final_avg_accuracy"] <= 1.0 and s["rounds"] == 2
    assert s["train_flops"] > 0 and s["grad_steps"] > 0 and 0 < s["trainable_fraction"] <= 1
    assert not math.isnan(s["prequential_accuracy"])
    if method in ("bandit", "bandit_weights_only", "bandit_no_reg", "random_samples",
                  "random_weights"):  # a weight bandit (or random weight groups) freezes groups
        assert s["trainable_fraction"] < 1.0
        assert "weight_groups" in result.tables
    elif method in ("bandit_samples_only", "bandit_all_weights"):
        assert s["trainable_fraction"] == 1.0 and "weight_groups" not in result.tables
    if method in ("bandit", "bandit_samples_only", "random_weights", "bandit_no_reg",
                  "bandit_all_weights"):
        # mixed batches (new_share 0.5): every batch holds new data, the arms are past rounds
        arms = set(result.tables["sample_arms"]["arm"])
        assert "round 0" in arms and "new" not in arms
    if method == "bandit_samples_only":  # new_share=0: the new chunk is an arm of its own
        old = run({**SMOKE, "method": method, "new_share": 0}, store=False)
        assert set(old.tables["sample_arms"]["arm"]) >= {"new", "round 0"}


def test_same_seed_same_first_model_across_methods():
    a = run({**SMOKE, "method": "finetune"}, store=False).rounds.iloc[0]
    b = run({**SMOKE, "method": "ewc"}, store=False).rounds.iloc[0]
    assert a["acc/all"] == b["acc/all"]


def test_deployment_guard_records_rejections():
    # An absurd learning rate makes retraining worse; a zero tolerance guard must keep the
    # served model and say so.
    r = run({**SMOKE, "method": "finetune", "lr": 0.5, "guard_tolerance": 0.0}, store=False)
    later = r.rounds[r.rounds["round"] >= 1]
    assert (~later["deployed"]).sum() == r.summary["deployments_rejected"] >= 1
    rejected = later[~later["deployed"]]
    assert (rejected["guard_accuracy_new"] < rejected["guard_accuracy_old"]).all()
    assert (rejected["negative_flip_rate"] == 0).all()


def test_multi_head_split_task_runs():
    r = run({**SMOKE, "scenario": "split_task", "method": "si"}, store=False)
    assert list(r.accuracy_matrix.columns) == [f"task {t}" for t in range(5)]
    assert r.summary["final_avg_accuracy"] > 0.5  # two-way choices: chance is 0.5


def test_forgetting_measures_the_old_classes_only_in_class_incremental():
    # The new classes keep arriving until the last round, so forgetting and backward transfer
    # are the old split's (best before R minus final; final minus after round 0); notebook 02
    # labels its forgetting bars "forgetting of the old classes". Data-incremental's one split
    # is learned until the end: there both are undefined.
    r = run({**SMOKE, "scenario": "class_incremental", "method": "finetune"}, store=False)
    old = r.accuracy_matrix["old"].to_numpy()
    assert r.summary["forgetting"] == pytest.approx(old[:-1].max() - old[-1])
    assert r.summary["backward_transfer"] == pytest.approx(old[-1] - old[0])
    assert r.summary["forgetting"] > 0  # fine-tuning on the new classes forgets the old
    d = run({**SMOKE, "method": "finetune"}, store=False)
    assert math.isnan(d.summary["forgetting"]) and math.isnan(d.summary["backward_transfer"])


def test_cli_summary_json_and_parameter_errors(tmp_path, capsys):
    out = tmp_path / "s.json"
    code = cli_main(["run", "-p", "dataset", "digits", "-p", "profile", "smoke", "-p", "device",
                     "cpu", "-p", "method", "replay", "--summary-json", str(out), "--quiet",
                     "--results", str(tmp_path / "results")])
    assert code == 0
    s = json.loads(out.read_text())
    for key in ("method", "dataset", "scenario", "seed", "final_avg_accuracy",
                "final_accuracy_by_split", "forgetting", "prequential_accuracy",
                "negative_flip_rate", "retrain_seconds", "train_flops", "trainable_fraction",
                "results_path"):
        assert key in s
    assert s["method"] == "replay" and s["final_accuracy_by_split"].keys() == {"all"}
    code = cli_main(["run", "-p", "dataset", "digits", "-p", "epoch", "2"])
    assert code == 2
    assert "unknown parameter 'epoch'" in capsys.readouterr().err


def test_cli_lists_methods_with_hyperparameter_sources(capsys):
    assert cli_main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        assert name in out
    assert "lam_synapse" in out and "source: authors' earlier code (NOTES.md)" in out
    assert cli_main(["params"]) == 0
    assert "guard_tolerance" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["bandit", "replay", "ewc", "online_ewc", "si", "mas",
                                    "scratch", "mir", "gss"])
def test_methods_run_on_the_papers_lenet_with_batch_norm(method):
    """The paper profile's model (conv + batch norm blocks) through every kind of component."""
    r = run({**SMOKE, "method": method, "model": "lenet", "scenario": "class_incremental"},
            store=False)
    assert 0.0 <= r.summary["final_avg_accuracy"] <= 1.0
    assert r.summary["train_flops"] > 0
