"""Sweep presets: each composes to the jobs it promises (dry runs), and the offline sweep runs end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from entrypoints import run_entry, runs_in, store_client, tiny_eval_sweep

# The recipe's published results table (the 20 models of the README's compare_baselines sweep), in its order:
# hub id, params, NDCG@10.
RECIPE_TABLE = [
    ("tomaarsen/Qwen3-VL-Embedding-2B-vdr", 2.1e9, 0.947),
    ("Qwen/Qwen3-VL-Embedding-8B", 8.1e9, 0.923),
    ("nvidia/omni-embed-nemotron-3b", 4.7e9, 0.915),
    ("nvidia/llama-nemotron-embed-vl-1b-v2", 1.7e9, 0.912),
    ("nomic-ai/nomic-embed-multimodal-7b", 8.3e9, 0.912),
    ("llamaindex/vdr-2b-multi-v1", 2.2e9, 0.912),
    ("llamaindex/vdr-2b-v1", 2.2e9, 0.911),
    ("nomic-ai/nomic-embed-multimodal-3b", 3.8e9, 0.899),
    ("Qwen/Qwen3-VL-Embedding-2B", 2.1e9, 0.888),
    ("LCO-Embedding/LCO-Embedding-Omni-7B", 8.9e9, 0.888),
    ("LCO-Embedding/LCO-Embedding-Omni-3B", 4.7e9, 0.860),
    ("BAAI/BGE-VL-v1.5-zs", 7.6e9, 0.800),
    ("BAAI/BGE-VL-v1.5-mmeb", 7.6e9, 0.797),
    ("BAAI/BGE-VL-MLLM-S2", 7.6e9, 0.792),
    ("BidirLM/BidirLM-Omni-2.5B-Embedding", 2.5e9, 0.775),
    ("royokong/e5-v", 8.4e9, 0.767),
    ("BAAI/BGE-VL-MLLM-S1", 7.6e9, 0.710),
    ("sentence-transformers/clip-ViT-L-14", 428e6, 0.611),
    ("BAAI/BGE-VL-large", 428e6, 0.467),
    ("BAAI/BGE-VL-base", 150e6, 0.335),
]
RECIPE_TABLE_HUB_IDS = [hub_id for hub_id, _, _ in RECIPE_TABLE]


def dry_run(tmp_path: Path, fixtures_root: Path, module: str, *overrides: str) -> list[dict[str, str]]:
    """Run ``module ... dry_run=true``; return each printed job as its ``key=value`` mapping."""
    result = run_entry(f"vdr_exp.{module}", [*overrides, "dry_run=true"], tmp_path, fixtures_root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists(), "a dry run must not touch the MLflow store"
    jobs: list[dict[str, str]] = []
    for line in result.stdout.splitlines():
        if line.startswith("[dry run] job"):
            jobs.append({"_header": line})
        elif jobs and line.startswith("  ") and "=" in line:
            key, value = line.strip().split("=", 1)
            jobs[-1][key] = value
    return jobs


def test_compare_baselines_lists_the_recipe_table(tmp_path, fixture_paths):
    jobs = dry_run(tmp_path, fixture_paths.root, "evaluate", "sweep=compare_baselines", "sweep.dry_run_summary=false")
    assert [job["model.path"] for job in jobs] == RECIPE_TABLE_HUB_IDS
    assert {job["pixels.max_pixels"] for job in jobs} == {"360000"}
    assert {job["dataset.path"] for job in jobs} == {"tomaarsen/llamaindex-vdr-en-train-preprocessed"}
    remote_code = {job["model.path"] for job in jobs if job["model.trust_remote_code"] == "True"}
    assert "Qwen/Qwen3-VL-Embedding-2B" not in remote_code and "BAAI/BGE-VL-base" in remote_code
    published = [
        (j["model.path"], float(j["model.published_params"]), float(j["model.published_ndcg_at_10"])) for j in jobs
    ]
    assert published == RECIPE_TABLE


@pytest.mark.parametrize(
    ("module", "sweep", "varying", "expected"),
    [
        ("evaluate", "base_vs_finetuned", ["model.name"],
         [["qwen3_vl_embedding_2b"], ["qwen3_vl_embedding_2b_vdr"], ["qwen3_vl_embedding_8b"]]),
        ("evaluate", "pixel_budget", ["model.name", "pixels.name"],
         [[m, p] for m in ("qwen3_vl_embedding_2b", "qwen3_vl_embedding_2b_vdr")
          for p in ("side_256", "side_448", "blog_600", "side_1024")]),
        ("evaluate", "matryoshka", ["model.name", "eval.dims"],
         [[m, "[2048, 1536, 1024, 512, 256, 128, 64]"] for m in ("qwen3_vl_embedding_2b", "qwen3_vl_embedding_2b_vdr")]),
        ("evaluate", "offline_demo", ["model.name", "dataset.name"],  # the finetuned model once per seed
         [[m, "synthetic_vdr"] for m in ("tiny_qwen3_vl", *["tiny_qwen3_vl_finetuned"] * 3, "tiny_qwen3_vl_4x")]),
        ("train", "loss_ablation", ["loss.name"],
         [["cmnrl_matryoshka"], ["cmnrl"], ["mnrl_matryoshka"], ["mnrl"]]),
    ],
)  # fmt: skip
def test_sweep_presets_compose_to_their_jobs(tmp_path, fixture_paths, module, sweep, varying, expected):
    jobs = dry_run(tmp_path, fixture_paths.root, module, f"sweep={sweep}")
    assert [[job[key] for key in varying] for job in jobs] == expected
    assert {job["sweep.name"] for job in jobs} == {sweep}


def test_lr_search_uses_optuna_within_its_range(tmp_path, fixture_paths):
    jobs = dry_run(tmp_path, fixture_paths.root, "train", "sweep=lr_search", "hydra.sweeper.n_trials=3")
    assert len(jobs) == 3
    rates = [float(job["trainer.learning_rate"]) for job in jobs]
    assert all(5e-6 <= r <= 1e-4 for r in rates) and len(set(rates)) == 3


def test_command_line_overrides_compose_with_a_sweep(tmp_path, fixture_paths):
    jobs = dry_run(
        tmp_path, fixture_paths.root, "evaluate", "sweep=base_vs_finetuned", "pixels=side_256", "eval.batch_size=4"
    )
    assert len(jobs) == 3
    assert {(job["pixels.name"], job["eval.batch_size"]) for job in jobs} == {("side_256", "4")}
    # A swept key given on the command line replaces the preset's values.
    jobs = dry_run(tmp_path, fixture_paths.root, "evaluate", "sweep=pixel_budget", "model=qwen3_vl_embedding_8b")
    assert [job["model.name"] for job in jobs] == ["qwen3_vl_embedding_8b"] * 4


def test_dry_run_of_a_single_run_and_of_the_prerequisite_training(tmp_path, fixture_paths):
    (job,) = dry_run(tmp_path, fixture_paths.root, "train", "experiment=offline_demo")
    assert job["model.name"] == "tiny_qwen3_vl" and job["trainer.learning_rate"] == "0.002"
    result = run_entry("vdr_exp.evaluate", ["sweep=offline_demo", "dry_run=true"], tmp_path, fixture_paths.root)
    assert re.search(r"first trains: python -m vdr_exp.train experiment=offline_demo .*fixtures.root=", result.stdout)
    assert not list((tmp_path / "sweep").glob("train_first_*/model")), "a dry run must not train"


def test_a_sweep_of_the_other_entry_point_is_refused_with_the_options(tmp_path, fixture_paths):
    result = run_entry("vdr_exp.evaluate", ["sweep=lr_search", "dry_run=true"], tmp_path, fixture_paths.root)
    assert result.returncode != 0
    assert "sweep/lr_search" in result.stderr and "offline_demo" in result.stderr  # Hydra lists the options


# --- the offline sweep, end to end (session fixture `demo`: `python -m vdr_exp.evaluate sweep=offline_demo`) ---


def test_offline_sweep_has_one_parent_with_every_job_as_child(demo):
    (parent,) = runs_in(demo, "sweep")
    children = [r for r in runs_in(demo) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep"] == "offline_demo" and parent.data.tags["sweep_dir"] == str(demo / "sweep")
    assert "sweep=offline_demo" in parent.data.tags["hydra_overrides"]
    # Three seeds: three trainings, the finetuned model evaluated once per seed, base and 4x once each
    # (evaluation-only jobs are deterministic: test_no_stale_results shows a rerun scores the same).
    assert sorted(r.data.tags["run_kind"] for r in children) == ["evaluate"] * 5 + ["train"] * 3
    assert all(r.info.status == "FINISHED" for r in children)
    assert len(runs_in(demo)) == 9  # nothing outside the sweep
    assert parent.data.tags["seeds"] == "3"
    evaluated = sorted(r.data.tags["sweep_params"] for r in children if r.data.tags["run_kind"] == "evaluate")
    assert evaluated == ["model=tiny_qwen3_vl", "model=tiny_qwen3_vl_4x", *["model=tiny_qwen3_vl_finetuned"] * 3]
    names = sorted(r.info.run_name for r in children)
    assert "eval seed=43 tiny_qwen3_vl_finetuned" in names and "train seed=44 tiny_qwen3_vl" in names
    # MLflow's runs table cuts names at about 24 characters: the first 20 tell every job of the sweep apart.
    assert len({name[:20] for name in names}) == len(names), names


def test_each_seeds_finetuned_model_is_resolved_from_that_seeds_training_run(demo):
    trained = {r.data.tags["seed"]: r for r in runs_in(demo, "train")}
    assert sorted(trained) == ["42", "43", "44"] and len({r.data.tags["seed_group"] for r in trained.values()}) == 1
    finetuned = [r for r in runs_in(demo, "evaluate") if r.data.tags["model_name"] == "tiny_qwen3_vl_finetuned"]
    assert sorted(r.data.tags["seed"] for r in finetuned) == ["42", "43", "44"]
    assert len({r.data.tags["seed_group"] for r in finetuned}) == 1
    for run in finetuned:
        train = trained[run.data.tags["seed"]]
        assert run.data.tags["source_run_id"] == train.info.run_id
        assert run.data.tags["model_id"] == f"models:/{train.data.tags['logged_model_id']}"
        # The evaluation of the logged model reproduces the training run's own final evaluation.
        assert run.data.metrics["ndcg_at_10"] == pytest.approx(train.data.metrics["ndcg_at_10"], abs=1e-6)
    finetuned_ids = {r.info.run_id for r in finetuned}
    evaluation_only = [r for r in runs_in(demo, "evaluate") if r.info.run_id not in finetuned_ids]
    assert len(evaluation_only) == 2
    assert all("seed" not in r.data.tags for r in evaluation_only)


def test_seeds_on_an_evaluation_only_sweep_repeat_nothing_and_say_so(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["sweep=base_vs_finetuned", "seeds=3", "dry_run=true"], tmp_path, fixture_paths.root
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: seeds=3 repeats training jobs only" in result.stdout and "nothing is repeated" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("[dry run] job")]) == 3


def test_seeds_repeat_every_training_job_of_a_training_sweep(tmp_path, fixture_paths):
    jobs = dry_run(tmp_path, fixture_paths.root, "train", "sweep=loss_ablation", "seeds=2")
    assert [(job["loss.name"], job["trainer.seed"]) for job in jobs] == [
        (loss, seed) for loss in ("cmnrl_matryoshka", "cmnrl", "mnrl_matryoshka", "mnrl") for seed in ("42", "43")
    ]


def test_offline_sweep_leaderboard(demo):
    board = pd.read_csv(demo / "outputs" / "leaderboards" / "offline_demo.csv")
    full = board[board["width"] == "full"].set_index("model")
    assert full.loc["tiny_qwen3_vl_finetuned", "rank"] == 1 and full.index[0] == "tiny_qwen3_vl_finetuned"
    # Three seeds in one row: n=3, mean ± std, and the two-level interval of the difference to the base.
    tuned = full.loc["tiny_qwen3_vl_finetuned"]
    assert (tuned["n_seeds"], tuned["seeds_expected"]) == (3, 3) and tuned["ndcg_at_10_std"] > 0
    assert tuned["ndcg_at_10_min"] <= tuned["ndcg_at_10"] <= tuned["ndcg_at_10_max"]
    assert tuned["delta_ci95_low"] < tuned["delta_ndcg_at_10"] < tuned["delta_ci95_high"]
    assert full.loc["tiny_qwen3_vl", "n_seeds"] == 1 and full.loc["tiny_qwen3_vl_4x", "n_seeds"] == 1
    assert full.loc["tiny_qwen3_vl_finetuned", "ndcg_at_10"] > full.loc["tiny_qwen3_vl", "ndcg_at_10"]
    assert 3.5 < full.loc["tiny_qwen3_vl_4x", "params"] / full.loc["tiny_qwen3_vl", "params"] < 4.5
    assert full.loc["tiny_qwen3_vl", "delta_ndcg_at_10"] == 0.0
    assert set(board["width"]) == {"full", "64", "32", "16", "8"}
    for name in ("offline_demo.md", "offline_demo_size_vs_ndcg.png", "offline_demo_matryoshka.png"):
        assert (demo / "outputs" / "leaderboards" / name).stat().st_size > 0
    (parent,) = runs_in(demo, "sweep")
    logged = {a.path for a in store_client(demo).list_artifacts(parent.info.run_id, "leaderboard")}
    assert {"leaderboard/offline_demo.csv", "leaderboard/offline_demo_size_vs_ndcg.png"} <= logged
    stdout = (demo / "stdout.txt").read_text()
    assert "| tiny_qwen3_vl_finetuned" in stdout and "offline_demo.csv" in stdout
    assert " ± " in stdout and "two-level bootstrap" in stdout
    report = demo / "outputs" / "leaderboards" / "offline_demo_report"
    assert (report / "report.html").is_file() and (report / "report.md").is_file()
    reported = {a.path for a in store_client(demo).list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/seed_spread.png"} <= reported


@pytest.mark.slow  # over 10 s: CI runs it; `make test` keeps its 15-minute budget
def test_command_line_multirun_in_worker_processes_links_children_to_the_parent(tmp_path, fixture_paths):
    """Plain `-m` sweep with the joblib launcher: jobs run in other processes and still find their parent."""
    overrides = tiny_eval_sweep("joblib", "hydra.launcher.n_jobs=2")
    result = run_entry("vdr_exp.evaluate", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = runs_in(tmp_path, "sweep")
    children = runs_in(tmp_path, "evaluate")
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep_params"] == "model"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(r.data.tags["sweep_params"] for r in children) == ["model=tiny_qwen3_vl", "model=tiny_qwen3_vl_4x"]
    assert all(r.info.status == "FINISHED" and "ndcg_at_10" in r.data.metrics for r in children)
    assert (tmp_path / "sweep" / "mlflow_parent_run_id").read_text().strip() == parent.info.run_id
    board = pd.read_csv(tmp_path / "outputs" / "leaderboards" / f"sweep-{parent.info.run_id[:8]}.csv")
    assert sorted(board["model"]) == ["tiny_qwen3_vl", "tiny_qwen3_vl_4x"]


def test_force_reruns_a_presets_prerequisite_training_too(tmp_path, fixture_paths):
    result = run_entry(
        "vdr_exp.evaluate", ["sweep=offline_demo", "force=true", "dry_run=true"], tmp_path, fixture_paths.root
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [x for x in result.stdout.splitlines() if x.startswith("[dry run] first trains:")]
    assert [re.search(r"trainer\.seed=(\d+)", line)[1] for line in lines] == ["42", "43", "44"]  # one per seed
    assert all("experiment=offline_demo" in line and "force=true" in line for line in lines)
