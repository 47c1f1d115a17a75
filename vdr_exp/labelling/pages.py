"""The folder's pages for the labelling page: the same page ids, rendering and cache as ``dataset=local_docs``.

One file that cannot be read (a damaged PDF, a broken image) does not close the page to the rest of the
folder: it is skipped and listed with its reason. A folder with no readable page at all is an error.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image

from vdr_exp.data import content
from vdr_exp.data.layouts.local_docs import (
    DOCUMENT_SUFFIXES,
    DocumentFolder,
    _relative_name,
    doc_id,
    numbered_pages,
    open_page,
)
from vdr_exp.errors import InputError
from vdr_exp.labelling.store import PageRef

log = logging.getLogger(__name__)


@dataclass
class PageIndex:
    folder: DocumentFolder
    refs: dict[str, PageRef] = field(default_factory=dict)  # page id -> file and page, in folder order
    skipped: dict[str, str] = field(default_factory=dict)  # relative file -> why it could not be read

    def image(self, page_id: str) -> Image.Image:
        return open_page(self.folder.pages[page_id])

    def jpeg(self, page_id: str, long_side: int) -> bytes:
        return _jpeg(self.folder.pages[page_id], long_side)


@lru_cache(maxsize=2048)
def _jpeg(path: Path, long_side: int) -> bytes:
    image = open_page(path)
    image.thumbnail((long_side, long_side))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def index_folder(root: Path, dpi: int, cache_root: Path) -> PageIndex:
    """Every readable page under ``root`` (PDFs rendered once per content and DPI, as evaluations do)."""
    if not root.is_dir():
        raise InputError(f"docs={str(root)!r} is not a folder; point it at the folder of your PDFs and page images.")
    index = PageIndex(DocumentFolder(root=root))
    files = sorted(p for p in content.files_under(root) if p.suffix.lower() in DOCUMENT_SUFFIXES)
    for path in files:
        try:
            relative = _relative_name(path, root)
            rendered = numbered_pages(path, dpi, cache_root)  # None: a one-page image, its own page
        except InputError as error:
            index.skipped[path.relative_to(root).as_posix()] = str(error)
            log.warning("skipped %s", error)
            continue
        if rendered is not None:
            index.folder.paged.add(relative)
        pages = list(enumerate(rendered, start=1)) if rendered is not None else [(None, path)]
        index.folder.page_counts[relative] = len(pages)
        for number, page in pages:
            page_id = doc_id(relative, number)
            index.folder.pages[page_id] = page
            index.refs[page_id] = PageRef(relative, number)
    if not index.refs:
        reasons = "; ".join(f"{name}: {why}" for name, why in index.skipped.items()) or "no PDFs or page images"
        raise InputError(
            f"{root}: no readable page ({reasons}). Add PDFs or images ({', '.join(sorted(DOCUMENT_SUFFIXES))})."
        )
    return index
