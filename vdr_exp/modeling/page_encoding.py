"""Pages into embeddings without the model waiting for them: decoding and preprocessing in DataLoader workers.

A recipe-size page takes one CPU thread about 75 ms to decode and run through the Qwen3-VL image processor;
an H200 forwards the 2B model through a page in a few milliseconds. Done in the main process, between
forwards (what ``model.encode_document`` does), the accelerator idles most of the time. Here each batch of
pages (largest first, so a batch holds pages of similar size and pads little) is decoded and preprocessed in
a worker process, ``prefetch`` batches ahead, pinned for a fast copy, while the main process only forwards.

``preprocess_on="device"`` keeps the image processor in the main process and hands it the model's device (the
torchvision backend resizes and normalises there); workers then only decode. On a CPU-only machine both give
the same embeddings as ``model.encode_document`` (tested to 1e-5).

Every call reports how long the model waited for input and how long it spent forwarding
(:class:`EncodeTiming`): the first figure says whether more workers would help.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image, UnidentifiedImageError
from sentence_transformers.util import batch_to_device
from torch.utils.data import DataLoader, Dataset

from vdr_exp.data.pages import as_image, page_area, page_name
from vdr_exp.errors import InputError
from vdr_exp.modeling.loader_timeouts import WorkerHung, hung_workers_named, kill_workers

log = logging.getLogger(__name__)

# More workers than this rarely helps one accelerator and costs memory (each holds a copy of the processor).
MAX_AUTO_WORKERS = 8
# A run that waited for pages longer than this share of its encoding time says so in its log.
WAIT_WARNING_SHARE = 0.10
PROMPT_NAMES = ("document", "passage", "corpus")  # what encode_document looks for, in this order

Forward = Callable[[dict], "torch.Tensor | list[torch.Tensor]"]


@dataclass(frozen=True)
class PipelineSettings:
    """How pages reach the model (``eval.pipeline`` in the config). ``workers`` is resolved already."""

    workers: int = 0
    prefetch: int = 2
    preprocess_on: str = "workers"  # "workers" (CPU, in the worker processes) or "device" (the model's device)
    pin_memory: bool = True
    timeout_s: float = 0.0  # longest wait for one batch from a worker before it counts as hung; 0: forever


@dataclass
class EncodeTiming:
    """Seconds the model waited for its next batch and seconds it spent in the forward pass."""

    wait_s: float = 0.0
    forward_s: float = 0.0
    pages: int = 0
    workers: int = 0

    @property
    def wait_share(self) -> float:
        total = self.wait_s + self.forward_s
        return self.wait_s / total if total > 0 else 0.0

    def add(self, other: EncodeTiming) -> None:
        self.wait_s += other.wait_s
        self.forward_s += other.forward_s
        self.pages += other.pages
        self.workers = max(self.workers, other.workers)


@dataclass(frozen=True)
class BatchFailure:
    """A page a worker could not decode: sent back as data, so the main process raises one clean error."""

    message: str


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity: SLURM, containers), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_workers(setting: str | int, batches: int, accelerator: bool = True) -> int:
    """``auto``: one core stays with the main process, the rest decode (at most MAX_AUTO_WORKERS, at most one
    per batch). None for a single batch, where a worker only adds its start-up time, and none when the model
    runs on the CPU: there is no accelerator to keep busy, and torch's own threads already use every core."""
    if str(setting) != "auto":
        return int(setting)
    if batches <= 1 or not accelerator:
        return 0
    return max(0, min(usable_cores() - 1, MAX_AUTO_WORKERS, batches))


def document_prompt(model: torch.nn.Module) -> str | None:
    """The prompt ``encode_document`` would use: the first of document/passage/corpus the model saved."""
    prompts = getattr(model, "prompts", {}) or {}
    name = next((n for n in PROMPT_NAMES if n in prompts), None)
    return model._resolve_prompt(None, name) if hasattr(model, "_resolve_prompt") else prompts.get(name)


def decode(page: object, page_id: str) -> Image.Image:
    """One page as a PIL image; a file that cannot be decoded is an InputError naming it."""
    try:
        image = as_image(page)
        if isinstance(image, Image.Image):
            image.load()
        return image
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(
            f"page {page_id} ({page_name(page)}) cannot be decoded ({error}); replace or remove the file."
        ) from None


class PageBatches(Dataset):
    """Batch ``i`` of the pages, decoded (and preprocessed when ``prepare`` is given). Runs in the workers."""

    def __init__(self, pages: Sequence, ids: Sequence[str], batches: list[list[int]], prepare: Callable | None) -> None:
        self.pages, self.ids, self.batches, self.prepare = pages, ids, batches, prepare

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict | list | BatchFailure:
        try:
            images = [decode(self.pages[i], self.ids[i]) for i in self.batches[index]]
        except InputError as error:
            return BatchFailure(str(error))
        return dict(self.prepare(images)) if self.prepare is not None else images


def _as_is(item: object) -> object:
    return item


def shield_worker(_worker_id: int) -> None:
    """Workers leave Ctrl-C, SIGTERM and SIGUSR2 to the main process. ``timeout`` and SLURM signal the whole
    process group: a worker killed mid-batch would make the main process fail with "DataLoader worker killed"
    instead of ending the run KILLED. Workers still stop with the main process: it shuts them down, and a worker
    whose parent is gone exits by itself."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)


def size_ordered_batches(pages: Sequence, batch_size: int) -> list[list[int]]:
    """Indices largest page first, cut into batches: similar sizes share a batch (less padding)."""
    areas = [page_area(page) for page in pages]
    order = sorted(range(len(pages)), key=lambda i: -areas[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def model_forward(model: torch.nn.Module, late_interaction: bool) -> Forward:
    """What ``encode_document`` does with one preprocessed batch: forward with ``task="document"``, then the
    sentence embedding (truncated to the model's ``truncate_dim``) or, for multi-vector models, each page's
    token embeddings without padding."""

    def forward(features: dict) -> torch.Tensor | list[torch.Tensor]:
        out = model(batch_to_device(features, model.device), task="document")
        if late_interaction:
            masks = out["attention_mask"].bool()
            return [tokens[mask].cpu() for tokens, mask in zip(out["token_embeddings"], masks, strict=True)]
        embeddings = out["sentence_embedding"]
        if getattr(model, "truncate_dim", None):
            embeddings = embeddings[..., : model.truncate_dim]
        return embeddings.cpu()

    return forward


def preprocessor(model: torch.nn.Module, settings: PipelineSettings) -> Callable[[list], dict]:
    prompt = document_prompt(model)
    if settings.preprocess_on == "device":
        device = str(model.device)
        return lambda images: model.preprocess(
            images, prompt=prompt, task="document", processing_kwargs={"image": {"device": device}}
        )
    return lambda images: model.preprocess(images, prompt=prompt, task="document")


def _loader(dataset: PageBatches, settings: PipelineSettings, pin: bool) -> DataLoader:
    if settings.workers:  # workers fork after tokenizers may have run threads: keep them single-threaded
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return DataLoader(
        dataset,
        batch_size=None,  # each item is a whole batch already
        collate_fn=_as_is,
        num_workers=settings.workers,
        prefetch_factor=settings.prefetch if settings.workers else None,
        pin_memory=pin,
        worker_init_fn=shield_worker if settings.workers else None,
        timeout=settings.timeout_s if settings.workers else 0,  # torch allows a timeout only with workers
    )


def encode_pages(
    model: torch.nn.Module,
    pages: Sequence,
    ids: Sequence[str],
    *,
    batch_size: int,
    settings: PipelineSettings,
    late_interaction: bool = False,
    forward: Forward | None = None,
) -> tuple[torch.Tensor | list[torch.Tensor], EncodeTiming]:
    """Embeddings of ``pages`` in their order, and where the time went. ``forward`` replaces the model's
    forward pass (benchmarks/pipeline.py simulates an accelerator with it)."""
    batches = size_ordered_batches(pages, batch_size)
    on_workers = settings.preprocess_on == "workers"
    prepare = preprocessor(model, settings)
    forward = forward or model_forward(model, late_interaction)
    pin = settings.pin_memory and on_workers and torch.cuda.is_available() and model.device.type == "cuda"
    loader = _loader(PageBatches(pages, ids, batches, prepare if on_workers else None), settings, pin)
    timing = EncodeTiming(pages=len(pages), workers=settings.workers)
    results: list = [None] * len(pages)
    model.eval()
    items = iter(loader)
    hung = hung_workers_named("eval.pipeline.timeout_s", settings.timeout_s, "eval.pipeline.workers")
    try:
        with torch.inference_mode(), hung:
            started = time.perf_counter()
            for batch, item in zip(batches, items, strict=True):
                if isinstance(item, BatchFailure):
                    raise InputError(item.message)
                ready = time.perf_counter()
                timing.wait_s += ready - started
                embedded = forward(item if on_workers else dict(prepare(item)))
                for index, row in zip(batch, embedded, strict=True):
                    results[index] = row
                started = time.perf_counter()
                timing.forward_s += started - ready
    except WorkerHung:
        kill_workers(items)
        raise
    finally:  # an error, Ctrl-C or SIGTERM: the workers stop now, not when a traceback lets the iterator go
        del items
    if late_interaction:
        return results, timing
    return (torch.stack(results) if results else torch.empty(0)), timing


def warn_if_waiting(timing: EncodeTiming, device: torch.device, where: str = "eval.pipeline.workers") -> None:
    """One log line when an accelerator waited for input more than WAIT_WARNING_SHARE of its time. On the CPU
    the "wait" is the same cores preparing pages, which no setting can hide: nothing to say there."""
    if device.type != "cpu" and timing.wait_share > WAIT_WARNING_SHARE and timing.pages:
        log.warning(
            "encoding %d pages: the model waited %.0f%% of its time for pages (%.1f s waiting, %.1f s forwarding, "
            "%d workers); raise %s (this machine lets this process use %d cores) or preprocess on the device "
            "(eval.pipeline.preprocess_on=device)",
            timing.pages,
            100 * timing.wait_share,
            timing.wait_s,
            timing.forward_s,
            timing.workers,
            where,
            usable_cores(),
        )
