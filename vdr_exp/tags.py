"""The MLflow tag contract: every tag name a run carries, the run kinds, and the search filters built on them.

Runs outlive the code that wrote them: the UI's saved views, the leaderboards, skip-finished-work and resume all
find runs by these names and values, so a name is spelled here once and imported everywhere
(``tests/unit/test_tag_contract.py`` fails on a literal elsewhere). Renaming one orphans every run already logged.
This is the bottom layer: it imports only the standard library. ``docs/reference/runs.md`` describes the tags.
"""

from __future__ import annotations

from enum import StrEnum


class RunKind(StrEnum):
    """Which entry point made a run (the ``run_kind`` tag): leaderboards rank train and evaluate runs only."""

    train = "train"
    evaluate = "evaluate"
    mine = "mine"
    generate = "generate"
    sweep = "sweep"  # a multirun's parent (launch.sweep_callbacks); its jobs are its children
    benchmark = "benchmark"  # a benchmark suite's run for one model (suites.runner)
    benchmark_task = "benchmark_task"  # one task and language subset of a suite (suites.task_runs)


# The kinds a job's config may name (``run_kind``); the others are made by the commands around the jobs.
JOB_KINDS = (RunKind.train, RunKind.evaluate, RunKind.mine, RunKind.generate)

# How a job's run name opens (``eval seed=43 tiny_qwen3_vl_finetuned``): short, because MLflow's runs table cuts
# names at about 24 characters and what tells the jobs of a sweep apart must come before that.
KIND_LABELS = {RunKind.train: "train", RunKind.evaluate: "eval", RunKind.mine: "mine", RunKind.generate: "gen"}


# What a run is: the runs table, the leaderboards' labels and columns, and a rerun's "same job?" check read these.
RUN_KIND = "run_kind"
MODEL_NAME = "model_name"
MODEL_ID = "model_id"  # the hub id or path the model loaded from (models:/<id> for a logged model)
DATASET = "dataset"
PIXEL_BUDGET = "pixel_budget"
FAMILY = "family"  # single-vector, multi-vector, router, lora: the leaderboard's kind column
GIT_COMMIT = "git_commit"
HYDRA_OVERRIDES = "hydra_overrides"
EXPERIMENT_PRESET = "experiment_preset"
ENTRY_POINT = "entry_point"  # on a sweep's parent: the module its jobs ran (vdr_exp.evaluate, ...)
CONFIG_FINGERPRINT = "config_fingerprint"  # what a sweep compares to skip finished work and resume checks
SOURCE_RUN_ID = "source_run_id"  # the training run a model came from (model.from_run)

# The model as it loaded: columns of the leaderboard (the full embedding width) and of the runs table.
ATTN_IMPLEMENTATION = "attn_implementation"
PARAM_COUNT = "param_count"
EMBEDDING_DIM = "embedding_dim"

# Reranking: the reranker of a reranked run and how deep it re-ordered (the leaderboard's reranked row).
RERANKER = "reranker"
RERANK_TOP_K = "rerank_top_k"

# Sweep membership: which sweep a job belongs to and what it varies; the parent lists the jobs it skipped.
SWEEP = "sweep"
SWEEP_DIR = "sweep_dir"
SWEEP_PARAMS = "sweep_params"
HYDRA_JOB_NUM = "hydra_job_num"
SKIPPED_PREFIX = "skipped."  # skipped.<job number> = the FINISHED run a skipped job matched (leaderboards count it)
ALL_SKIPPED = "all_skipped"

# Seeds: what leaderboards aggregate over (the runs that differ only by their training seed).
SEED = "seed"
SEED_GROUP = "seed_group"  # a hash of the config without the seed
SEEDS = "seeds"  # on a sweep's parent: how many seeds each training job was asked for

# Benchmark suites: the suite pivot reads a task run's task, subset and main score name; reruns find them by these.
BENCHMARK = "benchmark"
SUITE_ROOT = "suite_root"  # the run every task run of one suite (or one sweep over models) hangs under
MTEB_TASK = "mteb_task"
HF_SUBSET = "hf_subset"
MAIN_SCORE_NAME = "main_score_name"
TASK_FINGERPRINT = "task_fingerprint"  # what decides a task's scores: the job's config without the suite's selection
TASK_COMPLETE = "task_complete"  # set on a task's children once every subset finished and the result file is written
RERANKER_NAME = "reranker_name"  # on a task run: the reranker config's name
SKIPPED_TASK_PREFIX = "skipped_task."  # on a suite run: skipped_task.<task> = the earlier child runs a rerun reused
FAILED_TASKS = "failed_tasks"

# Artifacts and paths: where a run left what it made (resume and model.from_run read the folders back).
RUN_DIR = "run_dir"
MODEL_DIR = "model_dir"
ADAPTER_DIR = "adapter_dir"
RERANKER_DIR = "reranker_dir"
LOGGED_MODEL_ID = "logged_model_id"
EMBEDDING_CACHE = "embedding_cache"
MINED_DATASET = "mined_dataset"
GENERATED_DATASET = "generated_dataset"
DATASET_VERSION = "dataset_version"
EVAL_QUERIES = "eval_queries"
GENERATOR = "generator"
GENERATOR_PATH = "generator_path"

# How a run ended or restarted: a FAILED run says why; resume reopens an interrupted run.
ERROR = "error"
RESUMED_FROM = "resumed_from"
PREEMPTED = "preempted"

# Hardware: which card measured the throughput, which cluster job to find logs and accounting by.
ACCELERATOR = "accelerator"
SLURM_JOB_ID = "slurm_job_id"

# MLflow's own tags, which its UI reads: the parent of a nested run, a run's Markdown description, and on the
# experiment its kind (the runs table, not the GenAI pages) and the saved views (mlflow.sharedViewState.<id>).
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"
MLFLOW_EXPERIMENT_KIND = "mlflow.experimentKind"
MLFLOW_VIEW_STATE_PREFIX = "mlflow.sharedViewState."

# Every tag name above, and the prefixes of the names made of a prefix and a key (the contract test reads them).
PREFIXES = frozenset({SKIPPED_PREFIX, SKIPPED_TASK_PREFIX, MLFLOW_VIEW_STATE_PREFIX})
NAMES = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str)) - PREFIXES


class TagFilterError(ValueError):
    """A tag name or value an MLflow search filter cannot express (callers report it as the user's error)."""


def _name(tag: str) -> str:
    if "`" in tag:
        raise TagFilterError(f"tag name {tag!r} holds a backtick, which an MLflow search filter cannot express.")
    return f"tags.`{tag}`"


def equals(tag: str, value: str) -> str:
    """One ``tags.`key` = 'value'`` clause of an MLflow search filter, quoted so any value stays one literal.

    MLflow strips the quotes of a literal without unescaping it, so a value holding ``'`` is quoted with ``"``;
    one holding both quote characters cannot be expressed and is refused with a clear error.
    """
    name = _name(tag)
    quote = "'" if "'" not in value else '"'
    if quote in value:
        raise TagFilterError(f"tag value {value!r} holds both quote characters; MLflow cannot search for it.")
    return f"{name} = {quote}{value}{quote}"


def is_set(tag: str) -> str:
    """The clause matching runs that carry ``tag`` with a non-empty value (runs without it never match)."""
    return f"{_name(tag)} != ''"
