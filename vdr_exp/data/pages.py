"""Pages kept compressed until they are encoded, so a large corpus never sits decoded in memory.

A ViDoRe v3 task holds thousands of 1-2 MP pages: decoded, 5,000 of them take 30+ GB. A :class:`PageCorpus`
maps page ids to :class:`StoredPage` objects that read their compressed bytes from the (memory-mapped) Arrow
table only when asked; a :class:`FilePage` is a page image on disk (a folder of your own documents, PDF pages
rendered once to PNG). The size comes from the image header; the pixels are decoded only by ``image()``, in
the encoding pipeline's worker processes (:mod:`vdr_exp.modeling.page_encoding`), a batch at a time.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import numpy as np
from datasets import Image as ImageFeature
from PIL import Image

from vdr_exp.runtime.names import printable


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for the processor. Pillow's ``convert("RGB")`` clips high-bit-depth grayscale (16-bit ``I;16``, 32-bit
    ``I``, float ``F``) at 255, turning a 16-bit scan almost white; those are scaled to 8 bits first."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        else:
            top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        eight_bit = np.clip(np.rint(values / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit, mode="L").convert("RGB")
    return image.convert("RGB")


@dataclass(frozen=True)
class FilePage:
    """A page image file (one frame of it, for multi-frame formats), opened only when encoded."""

    path: Path
    frame: int = 0

    @cached_property
    def size(self) -> tuple[int, int]:
        with Image.open(self.path) as image:  # reads the header only
            return image.size

    def image(self) -> Image.Image:
        """The decoded page (RGB), a new object each time: the caller lets it go after use."""
        with Image.open(self.path) as image:
            if self.frame:
                image.seek(self.frame)
            return to_rgb(image)

    def __str__(self) -> str:
        return printable(self.path) + (f" frame {self.frame + 1}" if self.frame else "")  # odd names escaped


@dataclass(frozen=True)
class StoredPage:
    """One page whose file bytes (PNG, JPEG, ...) are read when needed and not kept: holding a list of
    5,000 of them costs their ids, not their bytes."""

    read: Callable[[], bytes]
    name: str = "stored page"  # what an error message calls it (the dataset and row)

    @property
    def data(self) -> bytes:
        return self.read()

    @cached_property
    def size(self) -> tuple[int, int]:
        with Image.open(io.BytesIO(self.data)) as image:  # reads the header only
            return image.size

    def image(self) -> Image.Image:
        """The decoded page (RGB), a new object each time: the caller lets it go after use."""
        with Image.open(io.BytesIO(self.data)) as image:
            return to_rgb(image)

    def __str__(self) -> str:
        return self.name


LAZY_PAGES = (StoredPage, FilePage)


def as_image(page: object) -> object:
    """A PIL image for a lazily read page; anything else as it is."""
    return page.image() if isinstance(page, LAZY_PAGES) else page


def page_area(page: object) -> int:
    """Width x height from the header (lazy pages) or the image; 0 for inputs without a size."""
    width, height = getattr(page, "size", (0, 0))
    return width * height


def page_name(page: object) -> str:
    """What an error message calls a page: its file (and frame) or its dataset row."""
    return str(page) if isinstance(page, LAZY_PAGES) else type(page).__name__


class _StoredColumn:
    """An image column of a ``datasets.Dataset`` read as compressed bytes, row by row (never decoded here)."""

    def __init__(self, dataset: object, column: str) -> None:
        self._rows = dataset.select_columns([column]).cast_column(column, ImageFeature(decode=False))
        self._column = column

    def bytes_of(self, row: int) -> bytes:
        cell = self._rows[row][self._column]
        return cell.get("bytes") or Path(cell["path"]).read_bytes()


def stored_pages(dataset: object, column: str = "image", label: str = "dataset") -> list[StoredPage]:
    """One :class:`StoredPage` per row of ``column``: a corpus list that costs ids, not pixels."""
    stored = _StoredColumn(dataset, column)
    return [
        StoredPage(partial(stored.bytes_of, row), name=f"{label} {column} row {row}") for row in range(len(dataset))
    ]


class PageCorpus(Mapping[str, StoredPage]):
    """Page id -> :class:`StoredPage`, over a ``datasets.Dataset`` with an id column and an image column. Rows
    are read on access (Arrow tables are memory-mapped), never decoded here."""

    def __init__(
        self, dataset: object, *, id_column: str = "id", image_column: str = "image", label: str = "dataset"
    ) -> None:
        self._stored = _StoredColumn(dataset, image_column)
        self._label = f"{label} {image_column}"
        self._index = {str(page_id): i for i, page_id in enumerate(dataset[id_column])}

    def __getitem__(self, page_id: str) -> StoredPage:
        row = self._index[page_id]
        return StoredPage(partial(self._stored.bytes_of, row), name=f"{self._label} row {row} (id {page_id})")

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)
