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
    _check_image,
    doc_id,
    open_page,
    render_pdf,
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
        relative = path.relative_to(root).as_posix()
        try:
            if path.suffix.lower() == ".pdf":
                rendered = render_pdf(path, dpi, cache_root)
            else:
                _check_image(path)
                rendered = [path]
        except InputError as error:
            index.skipped[relative] = str(error)
            log.warning("skipped %s", error)
            continue
        index.folder.page_counts[relative] = len(rendered)
        for number, page in enumerate(rendered, start=1):
            page_number = number if path.suffix.lower() == ".pdf" else None
            page_id = doc_id(relative, page_number)
            index.folder.pages[page_id] = page
            index.refs[page_id] = PageRef(relative, page_number)
    if not index.refs:
        reasons = "; ".join(f"{name}: {why}" for name, why in index.skipped.items()) or "no PDFs or page images"
        raise InputError(
            f"{root}: no readable page ({reasons}). Add PDFs or images ({', '.join(sorted(DOCUMENT_SUFFIXES))})."
        )
    return index
