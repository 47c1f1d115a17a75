"""A DataLoader worker that stops sending batches ends the run with one line naming the timeout key, instead
of leaving the main process waiting forever: evaluation (``eval.pipeline.timeout_s``) and training
(``trainer.dataloader_timeout_s``). A real worker hangs here, for a second; the run as a user sees it:
tests/e2e/test_step_evaluation.py."""

from __future__ import annotations

import io
import multiprocessing
import time

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image
from torch.utils.data import DataLoader, get_worker_info

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, load_train_config, register_configs
from vdr_exp.data.pages import StoredPage
from vdr_exp.errors import ConfigError
from vdr_exp.modeling import loader_timeouts, page_encoding
from vdr_exp.runtime.failures import describe

register_configs()
HANG_S = 120  # far past the test's timeout: only the timeout (and the kill) can end the wait


class HangingPage(StoredPage):
    """A page whose decoding never ends in a worker process (a full /dev/shm, a file system that stopped)."""

    def image(self) -> Image.Image:
        if get_worker_info() is not None:
            time.sleep(HANG_S)
        return super().image()


class ImageModel(torch.nn.Module):
    """What encode_pages needs of a model: a device and a preprocess; the forward is passed in."""

    device = torch.device("cpu")

    def preprocess(self, images: list, prompt: str | None = None, task: str | None = None) -> dict:
        return {"pixel_values": torch.zeros(len(images), 1)}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_hung_page_worker_ends_the_encoding_in_seconds_with_one_line_naming_the_timeout():
    data = _png()
    pages = [HangingPage(lambda: data, name=f"page {i}") for i in range(2)]
    settings = page_encoding.PipelineSettings(workers=1, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        page_encoding.encode_pages(
            ImageModel(), pages, ["p0", "p1"], batch_size=1, settings=settings,
            forward=lambda features: torch.zeros(len(features["pixel_values"]), 2),
        )  # fmt: skip
    assert time.monotonic() - started < 20  # not HANG_S: the hung worker was killed, not waited for
    failure = describe(caught.value)
    assert failure.exit_code == 2 and "\n" not in failure.line
    assert "eval.pipeline.timeout_s=1" in failure.line and "/dev/shm" in failure.line
    assert "eval.pipeline.workers" in failure.line
    assert not [child for child in multiprocessing.active_children() if child.is_alive()]


def test_a_serial_encoding_keeps_no_timeout_which_torch_refuses_without_workers():
    data = _png()
    pages = [StoredPage(lambda: data, name="page")]
    settings = page_encoding.PipelineSettings(workers=0, timeout_s=1)
    embedded, _ = page_encoding.encode_pages(
        ImageModel(), pages, ["p0"], batch_size=1, settings=settings, forward=lambda f: torch.ones(1, 2)
    )
    assert embedded.shape == (1, 2)


class FakeTrainer:
    """The one method of the library's trainer that builds its training loader, and ``train``."""

    def __init__(self, workers: int, error: Exception | None = None) -> None:
        self.workers, self.error = workers, error

    def get_train_dataloader(self) -> DataLoader:
        return DataLoader(list(range(4)), num_workers=self.workers)

    def train(self, resume_from_checkpoint: str | None = None) -> None:
        if self.error is not None:
            raise self.error


def test_the_trainers_loader_gets_the_timeout_when_it_has_workers():
    timed = FakeTrainer(workers=1)
    loader_timeouts.time_train_loader(timed, 600)
    assert timed.get_train_dataloader().timeout == 600
    serial = FakeTrainer(workers=0)
    loader_timeouts.time_train_loader(serial, 600)
    assert serial.get_train_dataloader().timeout == 0


def test_a_hung_training_worker_is_one_line_naming_the_trainer_key():
    from vdr_exp.jobs.train import fit

    cfg = load_train_config(_compose("train", ["experiment=offline_demo", "trainer.dataloader_timeout_s=90"]))
    hung = FakeTrainer(1, RuntimeError("DataLoader timed out after 90 seconds"))
    with pytest.raises(ConfigError, match=r"trainer\.dataloader_timeout_s=90\).*trainer\.dataloader_num_workers"):
        fit(hung, cfg)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):  # any other error stays what it is
        fit(FakeTrainer(1, RuntimeError("CUDA out of memory")), cfg)


def _compose(name: str, overrides: list[str]):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def test_the_default_timeouts_are_minutes_and_a_negative_one_is_refused_naming_the_key():
    train = load_train_config(_compose("train", ["experiment=offline_demo"]))
    assert train.eval.pipeline.timeout_s >= 300 and train.trainer.dataloader_timeout_s >= 300
    with pytest.raises(ConfigError, match="eval.pipeline.timeout_s"):
        load_evaluate_config(_compose("evaluate", ["eval.pipeline.timeout_s=-1"]))
    with pytest.raises(ConfigError, match="trainer.dataloader_timeout_s"):
        load_train_config(_compose("train", ["trainer.dataloader_timeout_s=-1"]))
