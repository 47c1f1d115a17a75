"""Training batches: page images preprocessed on the model's device (``trainer.preprocess_on=device``) give the
collator's very features and train the same model; ``trainer.save_strategy=no`` writes no checkpoint, and
``trainer.save_model=false`` with ``tracking.log_model=false`` no weights at all."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from vdr_exp import data
from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
from vdr_exp.modeling import models, train_batches

register_configs()
# The same float32 kernels on the same pages: the processor sees a tensor instead of a PIL image, nothing else.
TOLERANCE = 1e-5
SHORT_TRAINING = [
    "experiment=offline_demo",
    "trainer.max_steps=2",
    "trainer.logging_steps=1",
    "trainer.eval_strategy=no",
    "trainer.save_strategy=no",
    "tracking.log_model=false",
    "dataset.max_eval_rows=8",
    "trainer.learning_rate=1e-4",
    "trainer.dataloader_num_workers=1",
]


def _collators(name: str, fixtures_root):
    """The family's own collator and the deferring one, built as the trainer builds them, and the model."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose(
            "train", overrides=["experiment=offline_demo", f"model={name}", f"fixtures.root={fixtures_root}"]
        )
    cfg = load_train_config(composed)
    loaded = models.load_model(cfg.model, cfg.pixels)
    model = loaded.model
    collator_class = loaded.family.training_classes().trainer.data_collator_class
    options = {
        "router_mapping": models.router_mapping(model, list(cfg.dataset.train_columns)),
        "prompts": {"query": model.prompts.get("query", "") or "Query: "},  # a prompt, so its handling is compared
    }
    library = collator_class(preprocess_fn=model.preprocess, **options)
    deferring = collator_class(preprocess_fn=train_batches.deferring(model.preprocess), **options)
    return library, deferring, model, data.load_train_rows(cfg.dataset)


@pytest.mark.parametrize("name", ["tiny_qwen3_vl", "tiny_qwen3_vl_multi_vector", "tiny_router"])
def test_pages_preprocessed_on_the_device_give_the_collators_features(name, fixture_paths):
    library, deferring, model, rows = _collators(name, fixture_paths.root)
    features = [rows[i] for i in range(6)]
    expected = library(features)
    deferred = deferring(features)
    assert any(isinstance(value, train_batches.DeferredImages) for value in deferred.values())
    assert not any(isinstance(value, torch.Tensor) and value.is_floating_point() for value in deferred.values())
    got = train_batches.complete(deferred, model, model.device)
    assert list(got) == list(expected)  # the same keys in the same order: the losses read columns by position
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            torch.testing.assert_close(got[key], value, atol=TOLERANCE, rtol=0, msg=key)
        else:
            assert got[key] == value, key


@pytest.mark.slow  # two trainings, about a minute
def test_a_training_preprocessing_on_the_device_trains_the_same_model(tmp_path, fixture_paths):
    from entrypoints import run_entry, runs_in, store_client

    losses, scores = {}, {}
    for where in ("workers", "device"):
        work = tmp_path / where
        result = run_entry(
            "vdr_exp.train", [*SHORT_TRAINING, f"trainer.preprocess_on={where}"], work, fixture_paths.root
        )
        assert result.returncode == 0, result.stderr[-3000:]
        (run,) = runs_in(work)
        history = store_client(work).get_metric_history(run.info.run_id, "train_loss")
        losses[where] = [m.value for m in sorted(history, key=lambda m: m.step)]
        scores[where] = run.data.metrics["ndcg_at_10"]
        assert run.data.metrics["train_setup_s"] >= run.data.metrics["train_first_batch_s"] > 0
    assert len(losses["workers"]) == 2
    assert losses["device"] == pytest.approx(losses["workers"], rel=1e-3)
    assert scores["device"] == pytest.approx(scores["workers"], abs=1e-4)


@pytest.mark.slow  # one short training with a step evaluation, about 30 s
def test_save_strategy_no_writes_no_checkpoint_and_save_model_false_no_weights(tmp_path, fixture_paths):
    from entrypoints import run_entry, runs_in

    overrides = [
        *SHORT_TRAINING,
        "trainer.max_steps=1",
        "trainer.eval_strategy=steps",  # a step evaluation: the trainer makes checkpoints/eval/ for it
        "trainer.eval_steps=1",
        "trainer.save_model=false",
    ]
    result = run_entry("vdr_exp.train", overrides, tmp_path, fixture_paths.root)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_in(tmp_path)
    assert "eval_ndcg_at_10" in run.data.metrics
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / "model").exists()
    weights = [p for suffix in ("*.safetensors", "*.bin", "*.pt") for p in tmp_path.rglob(suffix)]
    assert weights == []
    assert "model_dir" not in run.data.tags and "logged_model_id" not in run.data.tags


def test_the_image_processor_is_handed_the_models_device_in_training_and_evaluation(fixture_paths, monkeypatch):
    """Sentence Transformers reads an image processor's options under "image" and drops unknown keys with a
    warning: under "images" the device never arrived, and the pages were processed on the CPU."""
    from transformers.image_processing_backends import TorchvisionBackend

    from vdr_exp.modeling.page_encoding import PipelineSettings, preprocessor

    _, deferring, model, rows = _collators("tiny_qwen3_vl", fixture_paths.root)
    devices = []
    process_image = TorchvisionBackend.process_image

    def spy(self, image, *args, **kwargs):
        devices.append(kwargs.get("device"))
        return process_image(self, image, *args, **kwargs)

    monkeypatch.setattr(TorchvisionBackend, "process_image", spy)
    features = [rows[i] for i in range(2)]
    train_batches.complete(deferring(features), model, model.device)
    pages = [row["image"] for row in features]
    preprocessor(model, PipelineSettings(preprocess_on="device"))(pages)
    assert len(devices) == 2 * len(features) + len(pages)
    assert set(devices) == {str(model.device)}


def test_the_model_cards_page_stats_are_the_same_from_opened_pages(fixture_paths, monkeypatch):
    """The card's stats come from widths and heights, which PIL reads from the header: the trainer is built
    without decoding every page of the first 100 rows."""
    from datasets.features.image import Image as ImageFeature

    _, _, model, rows = _collators("tiny_qwen3_vl", fixture_paths.root)
    expected = {c: model.model_card_data._compute_column_stats(rows, c) for c in rows.column_names}
    decoded = []
    decode_example = ImageFeature.decode_example
    monkeypatch.setattr(ImageFeature, "decode_example", lambda *a, **k: decoded.append(1) or decode_example(*a, **k))
    train_batches.card_stats_undecoded(model)
    got = {c: model.model_card_data._compute_column_stats(rows, c) for c in rows.column_names}
    assert decoded == []
    assert got == expected and expected["image"]["dtype"] == "image", expected
    assert isinstance(rows[0]["image"], Image.Image)  # the rows themselves still decode
