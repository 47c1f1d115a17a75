"""Pages kept compressed until they are encoded, so a large corpus never sits decoded in memory.

A ViDoRe v3 task holds thousands of 1-2 MP pages: decoded, 5,000 of them take 30+ GB. A :class:`PageCorpus`
maps page ids to :class:`StoredPage` objects that read their compressed bytes from the (memory-mapped) Arrow
table only when asked; the size comes from the image header, the pixels are decoded only by
:meth:`StoredPage.image`, one encoding chunk at a time (:func:`vdr_exp.retrieval.scoring.evaluate`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

from PIL import Image


@dataclass(frozen=True)
class StoredPage:
    """One page whose file bytes (PNG, JPEG, ...) are read when needed and not kept: holding a list of
    5,000 of them costs their ids, not their bytes."""

    read: Callable[[], bytes]

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
            return image.convert("RGB")


def as_image(page: object) -> object:
    """A PIL image for a stored page; anything else as it is."""
    return page.image() if isinstance(page, StoredPage) else page


class PageCorpus(Mapping[str, StoredPage]):
    """Page id -> :class:`StoredPage`, over a ``datasets.Dataset`` with an id column and an image column. Rows
    are read on access (Arrow tables are memory-mapped), never decoded here."""

    def __init__(self, dataset: object, *, id_column: str = "id", image_column: str = "image") -> None:
        from datasets import Image as ImageFeature

        self._rows = dataset.select_columns([image_column]).cast_column(image_column, ImageFeature(decode=False))
        self._column = image_column
        self._index = {str(page_id): i for i, page_id in enumerate(dataset[id_column])}

    def _bytes(self, row: int) -> bytes:
        cell = self._rows[row][self._column]
        return cell.get("bytes") or Path(cell["path"]).read_bytes()

    def __getitem__(self, page_id: str) -> StoredPage:
        return StoredPage(partial(self._bytes, self._index[page_id]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)
