"""The results key knows the code, the data, torch and the threads (paperlib.serving.provenance)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from paperlib.repro import report
from paperlib.serving import provenance
from paperlib.serving.config import RunConfig
from paperlib.serving.provenance import MixedCodeError, check_single_code, hash_package

PACKAGE = Path(provenance.__file__).resolve().parent.parent

_RUN = """
import json, sys
from paperlib.serving.runner import run
r = run({"dataset": "digits", "method": "finetune", "profile": "smoke"}, results=sys.argv[1])
import paperlib.serving.provenance as p
print(json.dumps({"cached": r.cached, "path": str(r.path), "code": p.code_hash(),
                  "file": __import__("paperlib").__file__}))
"""


def _run_copy(pkg_parent: Path, results: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pkg_parent), "PAPERLIB_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _RUN, str(results)], env=env, cwd=pkg_parent,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["file"].startswith(str(pkg_parent))  # the copy, not the installed package
    return rec


def _copy_package(dest: Path) -> Path:
    shutil.copytree(PACKAGE, dest / "paperlib", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.slow
def test_changed_method_code_is_a_cache_miss(tmp_path: Path) -> None:
    results = tmp_path / "results"
    original = _copy_package(tmp_path / "a")
    first = _run_copy(original, results)
    assert not first["cached"]
    # An identical copy elsewhere (a fresh clone): same code hash, so a cache hit.
    same = _run_copy(_copy_package(tmp_path / "b"), results)
    assert same["cached"] and same["path"] == first["path"] and same["code"] == first["code"]
    # Change one method's code in a third copy: the next run recomputes under a new key.
    edited = _copy_package(tmp_path / "c")
    methods = next((edited / "paperlib").rglob("methods.py"))  # flat or foldered layout
    text = methods.read_text()
    definition = 'Method("finetune", "retrain on the new chunk only (all weights)"'
    assert definition in text
    methods.write_text(text.replace(definition, definition[:-1] + ', edited"', 1))
    changed = _run_copy(edited, results)
    assert not changed["cached"] and changed["path"] != first["path"]
    assert changed["code"] != first["code"]
    stored = json.loads((Path(changed["path"]) / "env.json").read_text())
    assert stored["code_hash"] == changed["code"] and stored["git_revision"]
    config = json.loads((Path(changed["path"]) / "config.json").read_text())
    assert config["key_context"]["code"] == changed["code"]
    assert config["key_context"]["threads"] == 1 and "git_revision" in config


def test_hash_package_depends_on_contents_only(tmp_path: Path) -> None:
    a, b = _copy_package(tmp_path / "a") / "paperlib", _copy_package(tmp_path / "b") / "paperlib"
    assert hash_package(a) == hash_package(b) == provenance.code_hash()
    (b / "sub").mkdir()
    (b / "sub" / "x.py").write_text("X = 1\n")
    assert hash_package(b) != hash_package(a)
    (b / "sub" / "x.py").unlink()
    (b / "notes.txt").write_text("not code")
    assert hash_package(b) == hash_package(a)


def test_key_changes_with_threads_and_data(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
    monkeypatch.setenv("PAPERLIB_THREADS", "1")
    k1 = cfg.key("cpu")
    monkeypatch.setenv("PAPERLIB_THREADS", "2")
    assert cfg.key("cpu") != k1
    assert cfg.key("cuda") == cfg.replace().key("cuda")  # threads only matter on CPU
    monkeypatch.setenv("PAPERLIB_THREADS", "zero")
    with pytest.raises(ValueError, match="PAPERLIB_THREADS"):
        cfg.key("cpu")


def test_data_identity_tells_lossy_cifar_from_canonical(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERLIB_DATA_ROOT", str(tmp_path / "root"))
    jpeg = tmp_path / "mirror" / "cifar10"
    jpeg.mkdir(parents=True)
    (jpeg / "cifar10-jpeg.tar").write_bytes(b"stand-in")  # existence decides, nothing is read
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    lossy = provenance.data_identity("cifar10")
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(tmp_path / "empty"))
    canonical = provenance.data_identity("cifar10")  # nothing local: the canonical download
    assert lossy["lossy"] and lossy["variant"] == "jpeg"
    assert not canonical["lossy"] and canonical["variant"] == "python"
    assert lossy["checksums"] != canonical["checksums"]
    cfg = RunConfig.from_params({"dataset": "cifar10", "method": "finetune", "profile": "smoke"})
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(tmp_path / "mirror"))
    k_lossy = cfg.key("cpu")
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(tmp_path / "empty"))
    assert cfg.key("cpu") != k_lossy


def test_runs_pin_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from paperlib.serving.runner import run

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("PAPERLIB_THREADS", raising=False)
        r = run({"dataset": "digits", "method": "finetune", "profile": "smoke"}, store=False)
        assert torch.get_num_threads() == 1 and r.env["cpu_threads"] == 1
        assert r.summary["threads"] == 1 and r.summary["code_hash"] == provenance.code_hash()
    finally:
        torch.set_num_threads(before)


def test_report_refuses_mixed_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = [{"code_hash": "aaa"}, {"code_hash": "bbb"}]
    with pytest.raises(MixedCodeError, match="--allow-mixed-code"):
        check_single_code(rows)
    assert check_single_code(rows, allow_mixed=True) == ["aaa", "bbb"]
    results = tmp_path / "results"
    for i, code in enumerate(["aaa", "bbb"]):
        d = results / f"finetune-digits-data_incremental-s{i}-{code}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({
            "method": "finetune", "dataset": "digits", "scenario": "data_incremental",
            "seed": i, "profile": "smoke", "final_avg_accuracy": 0.9, "code_hash": code,
            "git_revision": f"rev{code}"}))
    figs = tmp_path / "figures"
    argv = ["--all", "--results", str(results), "--figures-dir", str(figs)]
    assert report.main(argv) == 2
    assert "--allow-mixed-code" in capsys.readouterr().err
    assert report.main([*argv, "--allow-mixed-code"]) == 0
    snippet = (figs / "tables" / "README_results.md").read_text()
    assert "code aaa, bbb (git revaaa, revbbb)" in snippet
    table = pd.read_csv(figs / "tables" / "results.csv")
    assert table.loc[0, "code_hash"] == "aaa,bbb"
    manifest = json.loads((figs / "MANIFEST.json").read_text())
    versions = manifest["tables"]["results"]["code_versions"]
    assert {v["code_hash"] for v in versions} == {"aaa", "bbb"}
