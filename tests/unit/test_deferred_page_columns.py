"""Training batches in pieces (the models themselves: tests/e2e/test_train_batches.py): deferred page columns
completed in their place with their own prompt and task, the sampler's encoded view, the checkpoints folder a
run without checkpoints leaves behind, and a bad ``trainer.preprocess_on`` refused naming the key."""

from __future__ import annotations

import io

import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature
from hydra import compose, initialize_config_module
from PIL import Image

from vdr_exp.config import CONFIG_MODULE, load_train_config, register_configs
from vdr_exp.errors import ConfigError
from vdr_exp.jobs.resume import drop_if_empty
from vdr_exp.modeling import train_batches


class FakeModel(torch.nn.Module):
    """``preprocess`` as a model has it, recording what it was called with."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def preprocess(self, inputs, prompt=None, task=None, **kwargs):
        self.calls.append({"inputs": inputs, "prompt": prompt, "task": task, **kwargs})
        return {"pixel_values": torch.stack([i.float() for i in inputs]), "modality": "image"}


def test_a_deferred_page_column_is_completed_in_its_place_with_its_own_prompt_and_task():
    text_calls = []

    def library_preprocess(inputs, prompt=None, task=None, **kwargs):
        text_calls.append(inputs)
        return {"input_ids": torch.ones(len(inputs), 2, dtype=torch.long)}

    preprocess = train_batches.deferring(library_preprocess)
    pages = [Image.new("P", (4, 3)), Image.new("RGBA", (4, 3), (9, 8, 7, 0))]
    deferred = preprocess(pages, prompt="Page: ", task="document", max_length=7)[train_batches.DEFERRED]
    assert [tuple(p.shape) for p in deferred.images] == [(3, 3, 4), (3, 3, 4)]
    assert deferred.images[0].dtype == torch.uint8 and text_calls == []
    query = preprocess(["a question"], prompt=None, task="query")
    batch = {"query_input_ids": query["input_ids"], "image_deferred_images": deferred, "image_task": "document"}
    model = FakeModel()
    completed = train_batches.complete(batch, model, model.device)
    assert list(completed) == ["query_input_ids", "image_pixel_values", "image_modality", "image_task"]
    (call,) = model.calls
    assert (call["prompt"], call["task"], call["max_length"]) == ("Page: ", "document", 7)
    assert call["processing_kwargs"]["image"]["device"] == "cpu"


def test_the_sampler_sees_pages_encoded_and_the_loader_decoded():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    features = Features({"query": Value("string"), "image": ImageFeature()})
    rows = Dataset.from_dict({"query": ["q"], "image": [{"bytes": buffer.getvalue(), "path": None}]}, features=features)
    view = train_batches.undecoded(rows)
    assert view[0]["image"]["bytes"] == buffer.getvalue() and view[0]["query"] == "q"
    assert isinstance(rows[0]["image"], Image.Image)


def test_a_checkpoints_folder_left_empty_is_removed_and_one_with_a_checkpoint_kept(tmp_path):
    empty, saved = tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints"
    (empty / "eval").mkdir(parents=True)
    (saved / "checkpoint-2").mkdir(parents=True)
    (saved / "checkpoint-2" / "trainer_state.json").write_text("{}")
    drop_if_empty(empty)
    drop_if_empty(saved)
    drop_if_empty(tmp_path / "never-made")
    assert not empty.exists() and saved.is_dir()


def test_a_bad_trainer_preprocess_on_is_refused_naming_the_key():
    register_configs()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("train", overrides=["trainer.preprocess_on=gpu"])
    with pytest.raises(ConfigError, match=r"trainer\.preprocess_on='gpu'.*workers.*device"):
        load_train_config(composed)
