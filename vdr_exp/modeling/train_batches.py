"""``trainer.preprocess_on=device``: training batches whose page images meet the image processor on the model's
device, right before the step, instead of in the DataLoader workers.

Why: a recipe batch holds 64 rows, 128 page images; decoding them and running the Qwen-VL image processor (resize,
normalise, cut into patches) took the workers longer than an H200's 6.5 s step, so every fourth step waited
about 7 s for its batch. Decoding alone is the cheap part, and the processor's torchvision backend runs on the
accelerator when handed ``device=``, as ``eval.pipeline.preprocess_on=device`` already does for evaluation.

How, in two halves around the DataLoader:

- in the workers, the library's collator runs as before (text columns tokenized, prompts and ``{column}_task``
  stamps resolved per column), except that its ``preprocess_fn`` (:func:`deferring`) turns a column of page
  images into :class:`DeferredImages`: each page as the processor itself would first convert it (RGB, uint8,
  channels first), a tensor that crosses to the main process through shared memory, is pinned by the loader and
  moved to the device by accelerate with the rest of the batch;
- in the main process, :func:`completing` wraps the trainer's ``training_step``: it runs ``model.preprocess`` on
  each deferred column, with the column's own prompt, task and length, on the device, and puts the features
  under the names the collator would have used (``{column}_{key}``, in the column's place), so the losses
  (CachedMNRL, Matryoshka, Router models' ``router_mapping``) see the same batch either way.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from collections.abc import Callable

import torch
from datasets import Image as ImageFeature
from PIL import Image
from sentence_transformers.util import batch_to_device
from transformers.image_transforms import convert_to_rgb

# The key a deferred column's images travel under: the collator names it f"{column}_{DEFERRED}".
DEFERRED = "deferred_images"


@dataclasses.dataclass
class DeferredImages:
    """One column of a batch: its pages decoded (uint8, channels first) and the arguments the collator gave
    ``preprocess_fn`` for that column, to run the image processor with later."""

    images: list[torch.Tensor]
    prompt: str | None = None
    task: str | None = None
    kwargs: dict = dataclasses.field(default_factory=dict)

    def pin_memory(self) -> DeferredImages:
        """The DataLoader's pinning thread calls this (it pins any object that has the method)."""
        return dataclasses.replace(self, images=[image.pin_memory() for image in self.images])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> DeferredImages:
        """accelerate's DataLoader sends every batch to the device through ``.to``: the pages go with it."""
        return dataclasses.replace(self, images=[image.to(device, non_blocking=non_blocking) for image in self.images])

    def preprocess(self, model: torch.nn.Module, device: torch.device) -> dict:
        """What the collator's ``model.preprocess`` call would have returned, computed on ``device``."""
        # "image" is Sentence Transformers' key for the image processor's options ("images" would be ignored)
        processing = {"image": {"device": str(device), "input_data_format": "channels_first"}}
        features = model.preprocess(
            self.images, prompt=self.prompt, task=self.task, processing_kwargs=processing, **self.kwargs
        )
        return batch_to_device(dict(features), device)


def page_tensor(image: Image.Image) -> torch.Tensor:
    """A page as the torchvision image processor converts a PIL image before anything else (PIL's own RGB
    conversion, so palette and alpha pages come out as they would there), channels first. A view of the decoded
    pixels, not a copy: the processor makes it contiguous, on the device once accelerate has moved it there (the
    copy cost a worker 19 ms of a recipe page's 46 ms)."""
    return torch.from_numpy(convert_to_rgb(image, return_numpy=True)).permute(2, 0, 1)


def deferring(preprocess: Callable) -> Callable:
    """The collator's ``preprocess_fn`` in the workers: a column of page images is only decoded (to tensors),
    anything else (text, mixed inputs) is preprocessed as the library's collator does."""

    def preprocess_fn(inputs: list, prompt: str | None = None, task: str | None = None, **kwargs) -> dict:
        if inputs and all(isinstance(item, Image.Image) for item in inputs):
            return {DEFERRED: DeferredImages([page_tensor(item) for item in inputs], prompt, task, kwargs)}
        return preprocess(inputs, prompt=prompt, task=task, **kwargs)

    return preprocess_fn


def complete(batch: dict, model: torch.nn.Module, device: torch.device) -> dict:
    """``batch`` with each deferred column replaced, in its place, by its preprocessed features."""
    suffix = f"_{DEFERRED}"
    completed = {}
    for key, value in batch.items():
        if isinstance(value, DeferredImages) and key.endswith(suffix):
            column = key[: -len(suffix)]
            completed.update({f"{column}_{name}": item for name, item in value.preprocess(model, device).items()})
        else:
            completed[key] = value
    return completed


def completing(training_step: Callable, model: torch.nn.Module) -> Callable:
    """``training_step`` that first completes the batch's deferred columns on the model's device. Wrapped
    around the out-of-memory guard, so a retried step reuses the features instead of preprocessing again."""

    @functools.wraps(training_step)
    def step(step_model: torch.nn.Module, inputs: dict, *args, **kwargs):
        return training_step(step_model, complete(inputs, model, model.device), *args, **kwargs)

    return step


def defer_images(trainer: object, model: torch.nn.Module) -> None:
    """``trainer.preprocess_on=device`` on a built trainer: its collator defers page images, its step
    completes them. Call before the trainer builds its DataLoader (its workers copy the collator)."""
    collator = trainer.data_collator
    collator.preprocess_fn = deferring(collator.preprocess_fn)
    trainer.training_step = completing(trainer.training_step, model)


def undecoded(dataset: object) -> object:
    """``dataset`` with its image columns left encoded (``{"bytes", "path"}``), for the batch sampler only."""
    features = getattr(dataset, "features", None) or {}
    for column, feature in features.items():
        if isinstance(feature, ImageFeature) and feature.decode:
            dataset = dataset.cast_column(column, ImageFeature(decode=False))
    return dataset


def sample_undecoded(trainer: object) -> None:
    """The NO_DUPLICATES samplers compare rows by value: on a decoded page that means pickling its pixels and
    hashing them (sha256), every page of every row, in the main process before step 1 (and, without hashing,
    again each epoch). Given the encoded pages instead, the same page (the same file's bytes) is still a
    duplicate and nothing is decoded. The DataLoader still reads the decoded rows; only the sampler's view
    changes."""
    build = trainer.get_batch_sampler

    @functools.wraps(build)
    def get_batch_sampler(dataset: object, *args, **kwargs):
        return build(undecoded(dataset), *args, **kwargs)

    trainer.get_batch_sampler = get_batch_sampler


def opened(page: dict) -> Image.Image:
    """An encoded page opened, not decoded: PIL reads the header (size, mode) and leaves the pixels."""
    return Image.open(io.BytesIO(page["bytes"])) if page.get("bytes") else Image.open(page["path"])


def lazily_opened(dataset: object) -> object:
    """``dataset`` whose page columns give opened, undecoded pages (the library's Image feature decodes every
    page of every row a slice touches, whichever column is asked for)."""
    pages = [c for c, feature in dataset.features.items() if isinstance(feature, ImageFeature) and feature.decode]
    view = undecoded(dataset)
    if pages:
        view.set_transform(lambda batch: {**batch, **{c: [opened(p) for p in batch[c]] for c in pages if c in batch}})
    return view


def card_stats_undecoded(model: object) -> None:
    """The trainer's model card callback computes, while the trainer is built, each column's stats over up to
    100 rows: for a page column only widths and heights, yet the Image feature decodes every page of the rows
    (12 s for 100 recipe rows of two pages on one core). Given opened pages, the stats are the same."""
    card = getattr(model, "model_card_data", None)
    if card is None:
        return
    compute = card._compute_column_stats

    @functools.wraps(compute)
    def column_stats(dataset: object, column: str, task: str | None = None) -> dict:
        if any(isinstance(f, ImageFeature) and f.decode for f in (getattr(dataset, "features", None) or {}).values()):
            dataset = lazily_opened(dataset)
        return compute(dataset, column, task=task)

    card._compute_column_stats = column_stats
