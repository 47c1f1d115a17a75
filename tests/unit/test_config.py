"""The configs compose and validate through the typed seam: presets and defaults, and every mistake refused at
composition naming the fix (each option of every group composed: tests/e2e/test_config_compositions.py)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import MissingMandatoryValue

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, load_mine_config, load_train_config, register_configs
from vdr_exp.errors import ConfigError

register_configs()


def _compose(name: str, overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.mark.parametrize("experiment", ["offline_demo", "recipe"])
def test_train_experiment_presets_compose(experiment):
    run = load_train_config(_compose("train", [f"experiment={experiment}"]))
    assert run.run_kind == "train"


def test_offline_eval_preset_composes():
    run = load_evaluate_config(_compose("evaluate", ["experiment=offline_eval"]))
    assert (run.model.name, run.dataset.name, run.pixels.name) == ("tiny_qwen3_vl", "synthetic_vdr", "fixture_small")


def test_defaults_are_the_recipe():
    run = load_train_config(_compose("train", []))
    assert run.model.path == "Qwen/Qwen3-VL-Embedding-2B"
    assert (run.pixels.min_pixels, run.pixels.max_pixels) == (28 * 28, 600 * 600)
    # mini-batch 8 instead of the recipe's 1: the cached loss's gradients do not depend on it (only speed does)
    assert run.loss.type == "cmnrl" and run.loss.mini_batch_size == 8 and run.loss.scale == 20.0
    assert run.loss.matryoshka_dims == [2048, 1536, 1024, 512, 256, 128, 64]
    t = run.trainer
    assert (t.num_train_epochs, t.per_device_train_batch_size, t.per_device_eval_batch_size) == (1, 64, 64)
    assert (t.learning_rate, t.warmup_ratio, t.lr_scheduler_type) == (2e-5, 0.1, "linear")
    assert (t.optim, t.weight_decay, t.max_grad_norm, t.bf16, t.seed) == ("adamw_torch_fused", 0.0, 1.0, True, 42)
    # the recipe's NO_DUPLICATES rule, with hashed keys (faster)
    assert (t.batch_sampler, t.activation_checkpointing, t.gradient_accumulation_steps) == (
        "no_duplicates_hashed",
        False,
        1,
    )
    assert (t.eval_steps, t.save_steps, t.logging_steps, t.save_total_limit) == (0.1, 0.1, 0.05, 2)
    assert t.prompts is None
    assert run.dataset.protocol.num_negatives == 4


def test_misspelled_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="learning_rat"):
        _compose("train", ["trainer.learning_rat=1e-4"])


def test_unknown_group_option_fails_at_composition():
    with pytest.raises(MissingConfigException, match="no_such_budget"):
        _compose("train", ["pixels=no_such_budget"])


def test_min_pixels_above_max_pixels_is_rejected():
    with pytest.raises(ConfigError, match="min_pixels"):
        load_train_config(_compose("train", ["pixels.min_pixels=500000"]))


def test_custom_model_requires_a_path():
    with pytest.raises(MissingMandatoryValue):
        load_train_config(_compose("train", ["model=custom"]))


def test_matryoshka_weights_must_match_dims():
    with pytest.raises(ConfigError, match="matryoshka_weights"):
        load_train_config(_compose("train", ["loss.matryoshka_weights=[1.0]"]))


def test_mine_config_composes_and_refuses_datasets_that_already_have_negatives():
    run = load_mine_config(_compose("mine", ["dataset.path=/data/docs"]))
    assert run.run_kind == "mine" and run.dataset.format == "local_docs" and run.dataset.eval_fraction == 0.2
    assert run.mine.out is None and run.mine.max_score_ratio is None  # a folder per source, see test_mining_safety
    with pytest.raises(ConfigError, match="already holds mined negatives"):
        load_mine_config(_compose("mine", ["dataset=vdr_en"]))
    with pytest.raises(ConfigError, match="max_score_ratio"):
        load_mine_config(_compose("mine", ["dataset.path=/d", "mine.max_score_ratio=1.5"]))


@pytest.mark.parametrize(
    ("override", "valid"),
    [
        ("dataset.format=csv", "pairs, local_docs, beir"),
        ("model.kind=dense", "single_vector, multi_vector, router"),
        ("model.module_stack=mean", "saved, last_token, build"),
        ("reranker.head=linear", "saved, dense, logit"),
        ("loss.type=triplet", "cmnrl, mnrl"),
        ("trainer.prompts=custom", "model"),
    ],
)
def test_an_unknown_variant_is_refused_at_composition_with_the_valid_choices(override, valid):
    with pytest.raises(ConfigCompositionException) as caught:
        _compose("train", [override])
    assert f"[{valid}]" in str(caught.value.__cause__)


def test_dataset_split_fraction_is_checked():
    with pytest.raises(ConfigError, match="eval_fraction"):
        load_evaluate_config(_compose("evaluate", ["dataset=local_docs", "dataset.path=/d", "dataset.eval_fraction=0"]))


def test_key_lists_come_from_the_schema_roles():
    from vdr_exp.config import keys_with

    assert set(keys_with("volatile")) == {
        "tracking", "paths", "sweep", "dry_run", "force", "run_name", "resume", "gpu_per_job", "seeds",
    }  # fmt: skip
    assert set(keys_with("location")) == {"tracking", "paths", "fixtures"}
    assert set(keys_with("setting")) == {"dataset", "pixels", "eval.dims"}
    assert {"model", "dataset", "loss", "trainer", "mine", "eval"} <= set(keys_with("section"))


def test_one_paths_node_moves_every_default_location():
    cfg = load_train_config(_compose("train", ["paths.output_dir=/scratch/vdr"]))
    located = [cfg.tracking.store, cfg.tracking.artifact_root, cfg.eval.cache_dir, cfg.fixtures.root]
    assert all(path.startswith("/scratch/vdr/") for path in located), located
    mine = load_mine_config(_compose("mine", ["paths.output_dir=/scratch/vdr", "dataset.path=/d"]))
    assert mine.paths.mined == "/scratch/vdr/mined" and mine.dataset.page_cache == "/scratch/vdr/page_cache"


def test_the_optimized_metric_is_what_the_entry_point_returns():
    from vdr_exp.launch.entrypoint import _optimized

    assert load_evaluate_config(_compose("evaluate", [])).optimized_metric == "ndcg_at_10"
    assert _optimized({"ndcg_at_10": 0.5, "ndcg_at_5": 0.4}, "ndcg_at_5") == 0.4
    assert _optimized({"ndcg_at_10": 0.5}, "ndcg_at_5") is None


@pytest.mark.parametrize("kind", ["sweep", "benchmark", "benchmark_task"])
def test_a_job_cannot_claim_a_run_kind_the_commands_make(kind):
    with pytest.raises(ConfigError, match=f"run_kind={kind} is a run the commands make themselves"):
        load_evaluate_config(_compose("evaluate", [f"run_kind={kind}"]))
