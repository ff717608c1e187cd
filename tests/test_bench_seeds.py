"""Part 2f (``make bench-seeds``): parts 2b and 2d's comparisons over the first 3 seeds and all."""

import math

import pytest

from paperlib.repro import bench
from paperlib.repro.bench_reach import METHODS, SETTINGS
from paperlib.repro.bench_recency import CELLS, arm_log, evaluate_recency
from paperlib.repro.bench_seeds import (
    COMPARISONS,
    _half_width,
    evaluate_seeds,
    evaluate_tuned,
    tuned_runs,
)
from paperlib.repro.bench_targets import SCENARIOS, target_runs


def _fake_runs(seeds: list[int]) -> list[dict]:
    """Replay is level with the sample bandit; the weight bandit costs 1 point on seeds 0-2
    only (so 3 seeds read it as a cost and 8 seeds as noise); the bandit is 2 points below full
    retraining on every seed (with a little spread, so its interval is not zero)."""
    def fake_run(params, store):
        m, seed = params["method"], params["seed"]
        acc = {"full_retrain": 0.97, "bandit": 0.95 + 0.001 * (seed % 2)}.get(m, 0.96)
        if m == "bandit_no_reg":
            acc = 0.95 if seed < 3 else 0.96 + (0.01 if seed % 2 else -0.01)

        class Run:
            summary = {"final_avg_accuracy": acc, "train_flops": 1.0, "retrain_seconds": 1.0,
                       "grad_steps": 1}
        return Run()

    return target_runs("cpu", seeds, "quick", run=fake_run, timing_repeats=1)


def _fake_tuned(seeds: list[int], calls: list | None = None) -> list[dict]:
    """Replay at lr 3e-3 (constant) is 0.4 points above its lr 1e-3 on seeds 0-2 and 0.4 below
    on later seeds, so a pick made on all seeds would differ from the pick on the first 3; full
    retraining is 0.97 at every setting; every other setting is 0.95."""
    def fake_run(params, store):
        if calls is not None:
            calls.append(params)
        m, seed = params["method"], params["seed"]
        acc = 0.97 if m == "full_retrain" else 0.95
        if m == "replay" and (params.get("lr"), params.get("lr_schedule")) == (3e-3, "constant"):
            acc += 0.004 if seed < 3 else -0.004

        class Run:
            summary = {"final_avg_accuracy": acc + 0.001 * (seed % 2), "train_flops": 1.0,
                       "retrain_seconds": 1.0}
        return Run()

    return tuned_runs("cpu", seeds, "quick", (1e-3, "constant"), run=fake_run)


def test_part_2f_tunes_target_1_on_the_first_seeds_and_runs_only_the_picks_after():
    calls: list = []
    rows = _fake_tuned(list(range(6)), calls)
    # seeds 0-2: every method at every setting; seeds 3-5: the reference and one pick each
    assert len(rows) == 3 * len(METHODS) * len(SETTINGS) + 3 * len(METHODS)
    assert len(calls) == len(rows) + 2  # one unrecorded warm-up run per batch
    later = {(r["method"], r["lr"], r["lr_schedule"]) for r in rows if r["seed"] >= 3}
    assert ("replay", 3e-3, "constant") in later and ("full_retrain", 1e-3, "constant") in later
    table = {r["comparison"]: r for r in evaluate_tuned(rows, (1e-3, "constant"))}
    assert len(table) == len(METHODS) - 1  # full retraining is the reference, not a row
    replay = table["full_retrain minus replay, own default, lr 0.003 constant "
                   "(target 1, its best setting on the first 3 seeds)"]
    assert replay["scenario"] == "data_incremental" and (replay["n_first"], replay["n_all"]) == (3, 6)
    assert replay["mean_first"] == pytest.approx(0.016) and replay["mean_all"] == pytest.approx(0.02)
    assert replay["reading_all"] == "> 0"


def _fake_recency(seeds: list[int]) -> list[dict]:
    """Replay 0.93 on every seed; each bandit cell's final old-class accuracy is 0.8 + its
    last-10 old-pull share, the round's share constant but for seed 0 (so only the last
    steps' share tracks the accuracy); the bandit is 6 points below replay on seed 1."""
    rows = [{"method": "replay", "grouping": None, "seed": s, "final_avg_accuracy": 0.93,
             "final_old_acc": 0.93, "old_pulls_round": math.nan, "old_pulls_last": math.nan}
            for s in seeds]
    for method, grouping in CELLS:
        for s in seeds:
            last = 0.1 * (s % 4)
            rows.append({"method": method, "grouping": grouping, "seed": s,
                         "final_avg_accuracy": 0.87 if (method, s) == ("bandit", 1) else 0.92,
                         "final_old_acc": 0.8 + last, "old_pulls_last": last,
                         "old_pulls_round": 0.3 if s == 0 else 0.2})
    return rows


def test_part_2g_reads_which_share_tracks_the_old_classes():
    table = {(r["method"], r["grouping"]): r for r in evaluate_recency(_fake_recency(list(range(8))))}
    assert len(table) == len(CELLS)
    cell = table[("bandit", "chunk")]
    assert cell["corr_last"] == "+1.00" and cell["corr_round"].startswith("-")
    assert cell["low_seeds"] == "1" and table[("bandit_samples_only", "class")]["low_seeds"] == "none"
    assert cell["old_pulls_last"] == "15.0% ± 12.0%" and cell["seeds"] == 8


def test_arm_log_records_each_bandit_step_and_restores_the_class():
    from paperlib.engine.samples import SampleBandit
    from paperlib.serving.runner import run

    real = SampleBandit.next_batch
    with arm_log() as log:
        r = run({"dataset": "digits", "scenario": "class_incremental", "method": "bandit",
                 "profile": "smoke", "seed": 0}, store=False)
    assert SampleBandit.next_batch is real
    steps = r.rounds["grad_steps"].iloc[1:].sum()
    assert len(log) == steps and {arm for _, arm in log} >= {"round 0"}
    assert {k for k, _ in log} == set(r.rounds["round"].iloc[1:])


def test_part_2f_sets_the_first_seeds_reading_beside_all_seeds():
    table = {(r["comparison"], r["scenario"]): r for r in evaluate_seeds(_fake_runs(list(range(8))),
                                                                        "quick")}
    assert len(table) == 1 + len(SCENARIOS) * len(COMPARISONS)
    gap = table[("full_retrain minus bandit, own default (target 1)", "data_incremental")]
    assert gap["mean_all"] == pytest.approx(0.0195) and gap["reading_all"] == "> 0"
    assert (gap["n_first"], gap["n_all"]) == (3, 8)
    weights = table[("+ weight bandit (vs sample bandit alone)", "rotated")]
    assert weights["mean_first"] == pytest.approx(-0.01) and weights["reading_first"] == "< 0"
    assert weights["reading_all"] == "includes 0"  # 3 seeds' reading does not hold on 8
    assert table[("bandit minus replay (target 2)", "class_incremental")]["reading_all"] == "< 0"


def test_part_2f_needs_more_seeds_than_it_compares_against():
    with pytest.raises(ValueError, match="more than 3 seeds"):
        evaluate_seeds(_fake_runs([0, 1, 2]), "quick")


def test_bench_seeds_part_refuses_three_seeds_before_running_anything(tmp_path, monkeypatch):
    from paperlib.repro import bench_targets

    monkeypatch.setattr(bench_targets, "target_runs", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit) as exc:
        bench.main(["--part", "seeds", "--device", "cpu", "--seeds", "0,1,2",
                    "--out", str(tmp_path / "b.json")])
    assert exc.value.code == 2 and not (tmp_path / "b.json").exists()


def test_t_interval_half_width():
    # 3 values 1, 2, 3: sd 1, t(0.975, 2) = 4.303 -> 4.303 / sqrt(3)
    assert _half_width([1.0, 2.0, 3.0]) == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert math.isnan(_half_width([1.0]))


def test_bench_seeds_part_splices_its_own_readme_section(tmp_path, monkeypatch):
    from paperlib.repro import bench_recency, bench_seeds, bench_targets

    monkeypatch.setattr(bench_targets, "target_runs",
                        lambda device, seeds, profile, timing_repeats: _fake_runs(seeds))
    monkeypatch.setattr(bench_seeds, "tuned_runs",
                        lambda device, seeds, profile, reference: _fake_tuned(seeds))
    monkeypatch.setattr(bench_recency, "recency_runs",
                        lambda device, seeds, profile, budget: _fake_recency(seeds))
    readme = tmp_path / "R.md"
    readme.write_text("a\n<!-- bench-seeds:start -->\nstale 2f\n<!-- bench-seeds:end -->\nb\n"
                      "<!-- bench-recency:start -->\nstale 2g\n<!-- bench-recency:end -->\n"
                      "<!-- bench-targets:start -->\nkept\n<!-- bench-targets:end -->\n")
    assert bench.main(["--part", "seeds", "--device", "cpu", "--seeds", "0,1,2,3,4",
                       "--out", str(tmp_path / "b.json"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and "kept" in text  # part 2b's section is not touched
    assert "Measured by `make bench-seeds` (`--part seeds --seeds 0,1,2,3,4`)" in text
    assert "| + weight bandit (vs sample bandit alone) | rotated |" in text
    assert "| full_retrain minus replay, own default, lr 0.003 constant (target 1, its best" in text
    assert "Part 2g, which arms the bandits pull" in text and "| bandit | chunk | 5 |" in text


def test_bench_methods_part_splices_2b_and_2d_and_leaves_part_2f(tmp_path, monkeypatch):
    """``--part methods`` (as ``make bench``'s ``all``) writes parts 2b and 2d, the part 2d
    table with its steps column, and does not touch part 2f's or 2g's sections."""
    from paperlib.repro import bench_targets

    monkeypatch.setattr(bench_targets, "target_runs",
                        lambda device, seeds, profile: _fake_runs(seeds))
    readme = tmp_path / "R.md"
    readme.write_text("".join(f"<!-- bench-{k}:start -->\nold {k}\n<!-- bench-{k}:end -->\n"
                              for k in ("targets", "attribution", "seeds", "recency")))
    assert bench.main(["--part", "methods", "--device", "cpu", "--seeds", "0,1,2",
                       "--out", str(tmp_path / "b.json"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old targets" not in text and "old attribution" not in text
    assert "old seeds" in text and "old recency" in text
    assert "| flops_vs_replay | steps_vs_replay |" in text


def test_bench_main_gives_back_the_thread_settings_it_pins(tmp_path, monkeypatch):
    """``bench.main`` pins ``$PAPERLIB_THREADS`` and torch's threads for its runs; a caller (a
    test worker, a notebook) gets both back, or its later runs would use the benchmark's count
    (two xdist workers at 2 threads each on 2 cores once slowed the suite by half)."""
    import os

    import torch

    from paperlib.repro import bench_targets

    monkeypatch.setattr(bench_targets, "target_runs",
                        lambda device, seeds, profile: _fake_runs(seeds))
    monkeypatch.delenv("PAPERLIB_THREADS", raising=False)
    threads = torch.get_num_threads()
    seen = {}
    real = bench._measure

    def spy(p, a, device):
        seen["env"], seen["threads"] = os.environ.get("PAPERLIB_THREADS"), torch.get_num_threads()
        return real(p, a, device)

    monkeypatch.setattr(bench, "_measure", spy)
    assert bench.main(["--part", "methods", "--device", "cpu", "--seeds", "0,1,2",
                       "--out", str(tmp_path / "b.json")]) == 0
    assert seen == {"env": str(threads), "threads": threads}  # pinned while it measured
    assert "PAPERLIB_THREADS" not in os.environ and torch.get_num_threads() == threads
