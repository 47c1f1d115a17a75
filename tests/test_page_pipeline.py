"""The input pipeline: pages decoded and preprocessed in worker processes give today's embeddings, bad pages
give one clear error, and the timing says where encoding spent its time."""

from __future__ import annotations

import io

import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from vdr_exp.config import CONFIG_MODULE, load_evaluate_config, register_configs
from vdr_exp.data.pages import FilePage, StoredPage
from vdr_exp.errors import InputError
from vdr_exp.modeling import models, page_encoding
from vdr_exp.modeling.page_encoding import PipelineSettings, encode_pages

register_configs()
# Worker processes and the main process run the same float32 kernels; what differs is only batch composition.
TOLERANCE = 1e-5


def _loaded(name: str, fixtures_root):
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=[f"model={name}", f"fixtures.root={fixtures_root}"])
    cfg = load_evaluate_config(composed)
    return models.load_model(cfg.model, cfg.pixels)


def _pages(count: int = 10) -> list[Image.Image]:
    """Pages of three sizes in shuffled order, so size-ordered batches differ from the input order."""
    sizes = [(96, 128), (128, 96), (64, 64)]
    return [
        Image.new("RGB", sizes[i % 3], (17 * i % 255, 101 * i % 255, 53 * i % 255)) for i in range(count)
    ]


def _stored(image: Image.Image, name: str) -> StoredPage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    return StoredPage(lambda: data, name=name)


@pytest.mark.parametrize("name", ["tiny_qwen3_vl", "tiny_qwen3_vl_multi_vector", "tiny_router"])
@pytest.mark.parametrize("settings", [PipelineSettings(workers=1), PipelineSettings(preprocess_on="device")])
def test_pages_through_the_pipeline_embed_as_encode_document_does(name, settings, fixture_paths):
    loaded = _loaded(name, fixture_paths.root)
    pages = _pages()
    ids = [f"p{i}" for i in range(len(pages))]
    late = loaded.family.late_interaction
    options = {} if late else {"convert_to_tensor": True}
    expected = loaded.model.encode_document(pages, batch_size=4, show_progress_bar=False, **options)
    stored = [_stored(page, f"p{i}") for i, page in enumerate(pages)]
    got, timing = encode_pages(loaded.model, stored, ids, batch_size=4, settings=settings, late_interaction=late)
    assert timing.pages == len(pages) and timing.forward_s > 0
    if late:
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            torch.testing.assert_close(mine, theirs.cpu(), atol=TOLERANCE, rtol=0)
    else:
        torch.testing.assert_close(got, expected.cpu(), atol=TOLERANCE, rtol=0)


def test_a_page_that_fails_to_decode_in_a_worker_is_one_error_naming_it(fixture_paths, tmp_path):
    loaded = _loaded("tiny_qwen3_vl", fixture_paths.root)
    good = _pages(6)
    broken = tmp_path / "scan.png"
    buffer = io.BytesIO()
    good[0].save(buffer, format="PNG")
    broken.write_bytes(buffer.getvalue()[:60])  # a header and the start of the data: truncated
    pages = [*good, FilePage(broken)]
    ids = [f"p{i}" for i in range(len(pages))]
    with pytest.raises(InputError) as caught:
        encode_pages(loaded.model, pages, ids, batch_size=2, settings=PipelineSettings(workers=1))
    message = str(caught.value)
    assert "p6" in message and str(broken) in message and "replace or remove" in message
    assert "Traceback" not in message


def test_auto_workers_leave_a_core_to_the_main_process_and_skip_single_batches(monkeypatch):
    monkeypatch.setattr(page_encoding, "usable_cores", lambda: 16)
    assert page_encoding.resolve_workers("auto", batches=100) == page_encoding.MAX_AUTO_WORKERS
    assert page_encoding.resolve_workers("auto", batches=3) == 3
    assert page_encoding.resolve_workers("auto", batches=1) == 0
    monkeypatch.setattr(page_encoding, "usable_cores", lambda: 2)
    assert page_encoding.resolve_workers("auto", batches=100) == 1
    assert page_encoding.resolve_workers("0", batches=100) == 0
    assert page_encoding.resolve_workers(3, batches=100) == 3


def test_a_model_waiting_for_pages_says_so_in_the_log(caplog):
    timing = page_encoding.EncodeTiming(wait_s=3.0, forward_s=7.0, pages=100, workers=1)
    with caplog.at_level("WARNING"):
        page_encoding.warn_if_waiting(timing)
    assert "waited 30%" in caplog.text and "eval.pipeline.workers" in caplog.text
    caplog.clear()
    page_encoding.warn_if_waiting(page_encoding.EncodeTiming(wait_s=0.5, forward_s=9.5, pages=100))
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("override", "named"),
    [("eval.pipeline.workers=many", "eval.pipeline.workers"), ("eval.pipeline.preprocess_on=gpu", "preprocess_on")],
)
def test_a_bad_pipeline_setting_is_refused_naming_the_key(override, named):
    from vdr_exp.errors import ConfigError

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        composed = compose("evaluate", overrides=[override])
    with pytest.raises(ConfigError, match=named):
        load_evaluate_config(composed)
