"""Named methods: a sample source x a weight scope x regularisers, with hyper-parameters.

Each method's hyper-parameters and their defaults are declared in one place (its entry in
:data:`METHODS`); every name is part of the run vocabulary (``paperlib run -p lam 10``).
``epochs`` (a general parameter) is the budget unit: ``finetune`` makes ``epochs`` passes over
the new chunk; budgeted methods make ``budget_factor * epochs`` passes' worth of steps.

>>> sorted(METHODS)[:4]
['bandit', 'bandit_all_weights', 'bandit_no_reg', 'bandit_samples_only']
>>> build_method("finetune", {}, epochs=1, seed=0).source.name
'new_only'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paperlib.engine.plugins import Plugin
from paperlib.engine.samples import (
    AllSeen,
    NewOnly,
    RandomSamples,
    Replay,
    SampleBandit,
    SampleSource,
)
from paperlib.engine.weights import AllWeights, RandomWeights, WeightBandit, WeightScope
from paperlib.spec import Spec

# Shared hyper-parameter declarations: name -> (Spec, default, where the default comes from).
_HP: dict[str, tuple[Spec, Any, str]] = {
    "budget_factor": (Spec("float", lo=0.01, help="steps = budget_factor * epochs * ceil(n_new/B)"),
                      2.0, "ours"),
    "memory_size": (Spec("int", lo=1, optional=True,
                         help="reservoir of past samples that replay / the sample bandit draw "
                              "from (None = everything seen)"), 2000,
                    "ours (the sample bandit's bound: issue 8, equal to replay's)"),
    "replay_ratio": (Spec("float", lo=0.0, hi=0.99, help="share of each batch from memory"),
                     0.5, "Chaudhry et al. 2019"),
    "sample_policy": (Spec("str", help="bandit policy over data groups"), "exp3s",
                      "Graves et al. 2017 (Exp3.S for curricula)"),
    "new_share": (Spec("float", lo=0.0, hi=0.99,
                       help="share of each sample-bandit batch from the new chunk; the rest "
                            "comes from the memory arm the policy picks (0 = whole batch from "
                            "the picked arm, the new chunk being one more arm)"),
                  0.5, "ours (replay's split, Chaudhry et al. 2019; issue 8)"),
    "sample_grouping": (Spec("str", ("chunk", "class", "loss")), "chunk", "NOTES.md"),
    "sample_reward": (Spec("str", ("visit_progress", "batch_progress", "holdout"),
                           help="visit_progress: loss change between an arm's visits (no extra "
                                "pass); batch_progress: loss before-after on the batch (1 extra "
                                "forward/step); holdout: held-out batch's loss drop"),
                      "visit_progress",
                      "Graves et al. 2017 (learning progress), Matiisen et al. 2017 (|slope| "
                      "between visits)"),
    "weight_policy": (Spec("str", help="k-of-G bandit policy over parameter groups"), "exp3m",
                      "Uchiya et al. 2010"),
    "k_groups": (Spec("float", lo=0.01, help="groups trained at once: int, or fraction of G"),
                 0.5, "ours"),
    "reselect_every": (Spec("int", lo=1, help="steps between weight-bandit choices"), 20, "ours"),
    "weight_reward": (Spec("str", ("share", "per_param"),
                           help="weight-bandit reward: path-integral share, or per parameter"),
                      "share", "NOTES.md (share of the loss decrease); per_param is ours"),
    "train_head_always": (Spec("bool", help="the output layer trains every step (one of the k)"),
                          True, "ours (new classes must reach the logits)"),
    "lam_synapse": (Spec("float", lo=0.0, help="weight (synapse) term strength"), 1e-3,
                    "authors' earlier code (NOTES.md)"),
    "lam_neuron": (Spec("float", lo=0.0, help="neuron term strength"), 1e-3,
                   "authors' earlier code (NOTES.md)"),
    "importance": (Spec("str", ("fisher", "mas", "si")), "fisher", "authors' earlier code"),
    "neuron_term": (Spec("bool"), True, "authors' earlier code"),
    "neuron_mode": (Spec("str", ("round", "batch")), "round", "ours (batch = authors' code)"),
    "neuron_cache": (Spec("bool", help="served-model activations cached once per round, "
                                       "not a served forward per step"),
                     True, "ours (as DER caches logits, Buzzega et al. 2020); false = authors'"),
    "neuron_anchors": (Spec("int", lo=1, optional=True,
                            help="pool samples per round the cached neuron term covers "
                                 "(None = all; each costs one served forward)"),
                       256, "ours (issue 8: the term's served forwards bounded per round)"),
    "importance_samples": (Spec("int", lo=1, help="samples that estimate importances per round"),
                           256, "ours (per-sample gradients are costly on CPU)"),
    "lam": (Spec("float", lo=0.0, help="regulariser strength"), None,
            "per method: EWC / online EWC 100 (Kirkpatrick et al. 2017 range), SI 1 (Zenke et al. "
            "2017, Split-MNIST), MAS 1 (ours; the authors' code used 1e-4 on its scale)"),
    "ewc_gamma": (Spec("float", lo=0.0, hi=1.0, help="online EWC Fisher decay"), 0.9,
                  "Schwarz et al. 2018"),
    "si_xi": (Spec("float", lo=0.0, help="SI damping"), 0.1, "Zenke et al. 2017"),
    # The rivals (paperlib.method.rivals, paperlib.method.distill). Mammoth = its best args for Seq-MNIST.
    "memory_update": (Spec("str", ("round", "step"),
                           help="replay: reservoir fed the chunk after the round, or each step's "
                                "new samples after the step (Mammoth's ER)"),
                      "round", "ours (the rivals always use step, as in their papers)"),
    "mir_candidates": (Spec("int", lo=1, optional=True,
                            help="MIR: memory candidates scored per step (None: 5 per replayed "
                                 "sample; an explicit count must exceed the replayed samples)"),
                       None, "Aljundi et al. 2019 (code: --subsample 50 for a memory batch of 10)"),
    "mir_lr": (Spec("float", lo=0.0, help="MIR: learning rate of the virtual SGD step"), 0.1,
               "Aljundi et al. 2019 (Split-MNIST lr)"),
    "gss_candidates": (Spec("int", lo=1, help="GSS: memory gradients compared per step"), 10,
                       "Aljundi et al. 2019; Mammoth gss_minibatch_size 10"),
    "der_alpha": (Spec("float", lo=0.0, help="DER: weight of the logit (MSE) replay"), 1.0,
                  "Buzzega et al. 2020 / Mammoth, Seq-MNIST buffer 500 (DER and DER++)"),
    "der_beta": (Spec("float", lo=0.0, help="DER++: weight of the label (CE) replay"), 0.5,
                 "Buzzega et al. 2020 / Mammoth, Seq-MNIST buffer 500"),
    "lwf_alpha": (Spec("float", lo=0.0, help="LwF: weight of the distillation loss"), 1.0,
                  "Li & Hoiem 2017 (lambda_o = 1); Mammoth Seq-MNIST alpha 1"),
    "lwf_temperature": (Spec("float", lo=0.01, help="LwF: softmax temperature"), 2.0,
                        "Li & Hoiem 2017"),
}


def _hp(*names: str, **overrides: Any) -> dict[str, Any]:
    return {n: overrides.get(n, _HP[n][1]) for n in names}


@dataclass
class Built:
    """A method instantiated for one run."""

    source: SampleSource
    scope: WeightScope
    regularizers: list[Plugin] = field(default_factory=list)
    reinit_each_round: bool = False


@dataclass(frozen=True)
class Method:
    """A named retraining method: ``build(hparams, epochs, seed) -> Built``."""

    name: str
    description: str
    hparams: dict[str, Any]
    build: Callable[[dict[str, Any], float, int], Built]
    reinit_each_round: bool = False


def _sni(hp: dict[str, Any]) -> Plugin:
    from paperlib.method.regularizers import SynapseNeuronImportance

    return SynapseNeuronImportance(
        lam_synapse=hp["lam_synapse"], lam_neuron=hp["lam_neuron"], importance=hp["importance"],
        use_neuron_term=hp["neuron_term"], neuron_mode=hp["neuron_mode"],
        importance_samples=hp["importance_samples"], neuron_cache=hp["neuron_cache"],
        neuron_anchors=hp["neuron_anchors"])


def _sample_bandit(hp: dict[str, Any], epochs: float, seed: int, random: bool = False) -> SampleSource:
    cls = RandomSamples if random else SampleBandit
    kw = {} if random else {"policy": hp["sample_policy"], "reward": hp["sample_reward"]}
    return cls(epochs=epochs, budget_factor=hp["budget_factor"], grouping=hp["sample_grouping"],
               seed=seed, memory_size=hp["memory_size"], new_share=hp["new_share"], **kw)


def _weight_bandit(hp: dict[str, Any], seed: int, random: bool = False) -> WeightScope:
    common = {"k_groups": hp["k_groups"], "reselect_every": hp["reselect_every"], "seed": seed,
              "train_head_always": hp["train_head_always"]}
    if random:
        return RandomWeights(**common)
    return WeightBandit(policy=hp["weight_policy"], reward=hp["weight_reward"], **common)


def _regularized(reg_name: str, **args: str) -> Callable[[dict[str, Any], float, int], Built]:
    """Fine-tuning plus one regulariser; ``args`` maps constructor arguments to hyper-parameters."""
    def build(hp: dict[str, Any], epochs: float, seed: int) -> Built:
        from paperlib.method.regularizers import make_regularizer

        reg = make_regularizer(reg_name, **{arg: hp[name] for arg, name in args.items()})
        return Built(NewOnly(epochs), AllWeights(), [reg])
    return build


_FISHER_ARGS = {"lam": "lam", "importance_samples": "importance_samples"}


_PAPER_HP = ("budget_factor", "memory_size", "new_share", "sample_policy", "sample_grouping", "sample_reward",
             "weight_policy", "k_groups", "reselect_every", "weight_reward", "train_head_always",
             "lam_synapse", "lam_neuron", "importance", "neuron_term", "neuron_mode",
             "neuron_cache", "neuron_anchors", "importance_samples")
# The random ablations take the full method's hyper-parameters except those of the policy they
# replace (which would be accepted and silently ignored).
_RANDOM_S_HP = tuple(h for h in _PAPER_HP if h not in ("sample_policy", "sample_reward"))
_RANDOM_W_HP = tuple(h for h in _PAPER_HP if h not in ("weight_policy", "weight_reward"))
_SAMPLE_HP = ("budget_factor", "memory_size", "new_share", "sample_policy", "sample_grouping", "sample_reward")
_WEIGHT_HP = ("budget_factor", "weight_policy", "k_groups", "reselect_every", "weight_reward",
              "train_head_always")
_REG_HP = ("budget_factor", "lam_synapse", "lam_neuron", "importance", "neuron_term",
           "neuron_mode", "neuron_cache", "neuron_anchors", "importance_samples")

def _memory(hp: dict[str, Any]) -> tuple[int, float, float]:
    return hp["memory_size"], hp["replay_ratio"], hp["budget_factor"]


def _rival(kind: str) -> Callable[[dict[str, Any], float, int], Built]:
    """The rivals of :mod:`paperlib.method.rivals` and :mod:`paperlib.method.distill`; a source that also
    sets the loss (ER-ACE, DER) is listed as a plugin too."""
    def build(hp: dict[str, Any], epochs: float, seed: int) -> Built:
        from paperlib.method import distill, rivals

        if kind == "lwf":
            return Built(NewOnly(epochs), AllWeights(),
                         [distill.LwF(hp["lwf_alpha"], hp["lwf_temperature"])])
        src = {"mir": lambda: rivals.MIR(epochs, *_memory(hp), hp["mir_candidates"], hp["mir_lr"]),
               "gss": lambda: rivals.GSS(epochs, *_memory(hp), hp["gss_candidates"]),
               "er_ace": lambda: rivals.ERACE(epochs, *_memory(hp)),
               "der": lambda: distill.DarkReplay(epochs, *_memory(hp), hp["der_alpha"]),
               "derpp": lambda: distill.DarkReplay(epochs, *_memory(hp), hp["der_alpha"],
                                                   hp["der_beta"])}[kind]()
        return Built(src, AllWeights(), [src] if isinstance(src, Plugin) else [])
    return build


_MEM_HP = ("budget_factor", "memory_size", "replay_ratio")
_RIVALS = [
    Method("mir", "MIR (Aljundi et al. 2019): replay the memory samples a virtual step would "
           "hurt most", _hp(*_MEM_HP, "mir_candidates", "mir_lr"), _rival("mir")),
    Method("gss", "GSS-greedy (Aljundi et al. 2019): a memory kept diverse in gradient space",
           _hp(*_MEM_HP, "gss_candidates"), _rival("gss")),
    Method("der", "DER (Buzzega et al. 2020): replay stored logits (MSE)",
           _hp(*_MEM_HP, "der_alpha"), _rival("der")),
    Method("derpp", "DER++ (Buzzega et al. 2020): replay stored logits and labels",
           _hp(*_MEM_HP, "der_alpha", "der_beta"), _rival("derpp")),
    Method("er_ace", "ER-ACE (Caccia et al. 2022): replay with asymmetric cross-entropy",
           _hp(*_MEM_HP), _rival("er_ace")),
    Method("lwf", "LwF (Li & Hoiem 2017): distil the served model on the new data",
           _hp("lwf_alpha", "lwf_temperature"), _rival("lwf")),
]

METHODS: dict[str, Method] = {m.name: m for m in [
    Method("finetune", "retrain on the new chunk only (all weights)", {},
           lambda hp, e, s: Built(NewOnly(e), AllWeights())),
    Method("full_retrain", "retrain on all data seen so far, warm start", {},
           lambda hp, e, s: Built(AllSeen(e), AllWeights())),
    Method("scratch", "retrain on all data seen so far from a fresh initialisation", {},
           lambda hp, e, s: Built(AllSeen(e), AllWeights(), reinit_each_round=True),
           reinit_each_round=True),
    Method("replay", "new chunk + reservoir memory, half of each batch each",
           _hp("budget_factor", "memory_size", "replay_ratio", "memory_update"),
           lambda hp, e, s: Built(Replay(e, hp["memory_size"], hp["replay_ratio"],
                                         hp["budget_factor"], hp["memory_update"] == "step"),
                                  AllWeights())),
    Method("bandit", "the paper's method: sample bandit + weight bandit + synapse/neuron "
           "importance regulariser", _hp(*_PAPER_HP, importance_samples=256),
           lambda hp, e, s: Built(_sample_bandit(hp, e, s), _weight_bandit(hp, s), [_sni(hp)])),
    Method("bandit_samples_only", "ablation: sample bandit only (all weights, no regulariser)",
           _hp(*_SAMPLE_HP), lambda hp, e, s: Built(_sample_bandit(hp, e, s), AllWeights())),
    Method("bandit_weights_only", "ablation: weight bandit only (new chunk, no regulariser)",
           _hp(*_WEIGHT_HP),
           lambda hp, e, s: Built(NewOnly(e * hp["budget_factor"]), _weight_bandit(hp, s))),
    Method("importance_reg_only", "ablation: synapse/neuron regulariser only (new chunk)",
           _hp(*_REG_HP, importance_samples=256),
           lambda hp, e, s: Built(NewOnly(e * hp["budget_factor"]), AllWeights(), [_sni(hp)])),
    Method("random_samples", "ablation: the full method with uniformly random data groups",
           _hp(*_RANDOM_S_HP, importance_samples=256),
           lambda hp, e, s: Built(_sample_bandit(hp, e, s, random=True), _weight_bandit(hp, s),
                                  [_sni(hp)])),
    Method("random_weights", "ablation: the full method with uniformly random weight groups",
           _hp(*_RANDOM_W_HP, importance_samples=256),
           lambda hp, e, s: Built(_sample_bandit(hp, e, s), _weight_bandit(hp, s, random=True),
                                  [_sni(hp)])),
    Method("ewc", "EWC (Kirkpatrick et al. 2017): one Fisher penalty per past round",
           _hp("lam", "importance_samples", lam=100.0), _regularized("ewc", **_FISHER_ARGS)),
    Method("online_ewc", "online EWC (Schwarz et al. 2018): decayed running Fisher",
           _hp("lam", "importance_samples", "ewc_gamma", lam=100.0),
           _regularized("online_ewc", gamma="ewc_gamma", **_FISHER_ARGS)),
    Method("si", "Synaptic Intelligence (Zenke et al. 2017)",
           _hp("lam", "si_xi", lam=1.0), _regularized("si", lam="lam", xi="si_xi")),
    Method("mas", "Memory Aware Synapses (Aljundi et al. 2018)",
           _hp("lam", "importance_samples", lam=1.0), _regularized("mas", **_FISHER_ARGS)),
    *_RIVALS,
    # Last, so that every earlier method keeps its plot style (its position here). The two
    # remaining cells of the components' 2 x 2 (weight bandit x regulariser) over
    # the sample bandit, so each component's cost at equal compute is measured (`make bench` 2d).
    Method("bandit_no_reg", "ablation: sample bandit + weight bandit, no regulariser",
           _hp(*_SAMPLE_HP, *_WEIGHT_HP[1:]),
           lambda hp, e, s: Built(_sample_bandit(hp, e, s), _weight_bandit(hp, s))),
    Method("bandit_all_weights", "ablation: sample bandit + regulariser, every weight trainable",
           _hp(*_SAMPLE_HP, *_REG_HP[1:], importance_samples=256),
           lambda hp, e, s: Built(_sample_bandit(hp, e, s), AllWeights(), [_sni(hp)])),
]}


def method_hparam_specs(name: str) -> dict[str, tuple[Spec, Any]]:
    """``{hyper-parameter: (Spec, default)}`` of a method."""
    return {k: (_HP[k][0], v) for k, v in METHODS[name].hparams.items()}


def hparam_sources() -> dict[str, str]:
    """Where each default comes from (paper / authors' code / field / ours)."""
    return {k: v[2] for k, v in _HP.items()}


def build_method(name: str, hparams: dict[str, Any], epochs: float, seed: int) -> Built:
    """Instantiate method ``name`` with ``hparams`` (missing ones take their defaults)."""
    method = METHODS[name]
    hp = {**method.hparams, **hparams}
    return method.build(hp, epochs, seed)
