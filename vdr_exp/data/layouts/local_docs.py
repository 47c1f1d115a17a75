"""Your own documents: a folder of PDFs and page images plus ``queries.jsonl``, as a retrieval protocol.

Every page of every file is a corpus document. PDF pages are rendered by PDFium (``pypdfium2``) at the
configured DPI and cached on disk under a key made of the file's content hash and the DPI, so a second run,
or a run after renaming a file, renders nothing. Queries reference pages as ``{"file": ..., "page": n}``
(1-based; image files have no page, except multi-page ones such as a scanned TIFF: one page per frame). Every problem in the queries file is reported with its line number.
Any name a filesystem allows is read: a file is known by its name escaped to printable text (``caf\\xe9.png``
for a Latin-1 byte, ``a\\nb.png`` for a newline: :func:`vdr_exp.runtime.names.printable`) in ids, logs and queries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pypdfium2 as pdfium
from PIL import Image, UnidentifiedImageError

from vdr_exp.config import DatasetConfig
from vdr_exp.data import content
from vdr_exp.data.jsonl import jsonl_lines
from vdr_exp.data.layouts.base import CorpusLayout
from vdr_exp.data.pages import FilePage, to_rgb
from vdr_exp.data.protocols import RetrievalProtocol, safe_id
from vdr_exp.errors import InputError
from vdr_exp.runtime import failures
from vdr_exp.runtime.names import printable

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
DOCUMENT_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}


@dataclass(frozen=True)
class LocalQuery:
    query_id: str
    text: str
    # doc id -> relevance grade (1 unless the line gives "grade")
    relevant: dict[str, int]
    line: int


@dataclass
class DocumentFolder:
    """Pages (doc id -> rendered image file) and the queries that point at them."""

    root: Path
    pages: dict[str, Path] = field(default_factory=dict)
    page_counts: dict[str, int] = field(default_factory=dict)  # relative file -> pages (images: 1)
    paged: set[str] = field(default_factory=set)  # files whose pages queries name by number (PDFs, multi-page TIFF)
    queries: list[LocalQuery] = field(default_factory=list)


def doc_id(relative_file: str, page: int | None) -> str:
    """Readable, whitespace-free ids (TREC run files split on whitespace): ``reports/q3.pdf#p2``."""
    base = quote(relative_file, safe="/._-~\\")  # backslash escapes of odd names stay readable: ch\xffart.png
    return f"{base}#p{page}" if page is not None else base


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def render_pdf(pdf: Path, dpi: int, cache_root: Path) -> list[Path]:
    """PNG per page, rendered once per (content, DPI); written to a temp folder first, then renamed in place."""
    target = cache_root / f"{_sha(pdf)}-dpi{dpi}"
    if (target / "complete").is_file():
        return sorted(target.glob("page-*.png"))
    try:
        document = pdfium.PdfDocument(str(pdf))
    except pdfium.PdfiumError as error:
        raise InputError(f"{printable(pdf)}: cannot read this PDF ({error}); repair or remove the file.") from None
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=cache_root))
    try:
        for index in range(len(document)):
            page = document[index].render(scale=dpi / 72).to_pil().convert("RGB")
            page.save(staging / f"page-{index + 1:05d}.png")
        (staging / "complete").write_text(f"{printable(pdf.name)} {len(document)} pages at {dpi} dpi\n")
        if target.exists():  # a concurrent run finished first; its pages are identical
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    finally:
        document.close()
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(target.glob("page-*.png"))


# What Pillow raises on a damaged or hostile file is not a closed list (fuzzing found TypeError, KeyError, EOFError,
# struct.error besides OSError): any exception while a page file is opened or decoded is that file's fault.
IMAGE_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, Exception)


def _unreadable(path: Path, error: BaseException) -> InputError:
    return InputError(f"{printable(path)}: not a readable image ({error}); replace or remove the file.")


def _frame_count(path: Path) -> int:
    """How many pages an image file holds: frames of a multi-page TIFF (or any multi-frame format PIL reads)."""
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            image.verify()
    except IMAGE_ERRORS as error:
        raise _unreadable(path, error) from None
    return frames


def _check_image(path: Path) -> None:
    """A readable image (header and structure; the pixels are decoded when the page is opened)."""
    _frame_count(path)


def numbered_pages(path: Path, dpi: int, cache_root: Path) -> list[Path] | None:
    """A file's pages as images, when it has numbered pages (a PDF, a multi-frame image); None for a one-page
    image, which is its own page (checked to be readable)."""
    if path.suffix.lower() == ".pdf":
        return render_pdf(path, dpi, cache_root)
    frames = _frame_count(path)
    return split_frames(path, frames, cache_root) if frames > 1 else None


def split_frames(path: Path, frames: int, cache_root: Path) -> list[Path]:
    """PNG per frame of a multi-frame image, written once per content (like rendered PDF pages)."""
    target = cache_root / f"{_sha(path)}-frames"
    if (target / "complete").is_file():
        return sorted(target.glob("page-*.png"))
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".frames-", dir=cache_root))
    try:
        with Image.open(path) as image:
            for index in range(frames):
                image.seek(index)
                to_rgb(image).save(staging / f"page-{index + 1:05d}.png")
        (staging / "complete").write_text(f"{printable(path.name)} {frames} frames\n")
        if not target.exists():
            os.replace(staging, target)
    except IMAGE_ERRORS as error:
        if failures.storage(error) is not None:  # the cache's disk is full: not the file's fault
            raise
        raise _unreadable(path, error) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(target.glob("page-*.png"))


def _relative_name(path: Path, root: Path) -> str:
    """The file's name relative to the folder as printable text (bytes that are not UTF-8, newlines, control
    characters escaped) for ids, logs and queries files: one name always gives one text, two names never the same."""
    return printable(path.relative_to(root).as_posix())


def scan_pages(root: Path, dpi: int, cache_root: Path) -> DocumentFolder:
    """Every page of every PDF and image under ``root`` (recursively, in sorted order)."""
    if not root.is_dir():
        raise InputError(f"dataset.path={str(root)!r} is not a folder; point it at your documents.")
    folder = DocumentFolder(root=root)
    # Symlinked sub-folders are followed (rglob would skip them, silently shrinking the corpus), once each.
    files = sorted(p for p in content.files_under(root) if p.suffix.lower() in DOCUMENT_SUFFIXES)
    if not files:
        raise InputError(f"{printable(root)}: no PDFs or page images ({', '.join(sorted(DOCUMENT_SUFFIXES))}) found.")
    for path in files:
        relative = _relative_name(path, root)
        rendered = numbered_pages(path, dpi, cache_root)
        if rendered is not None:  # pages addressed by number: PDFs, multi-page scans
            folder.page_counts[relative] = len(rendered)
            folder.paged.add(relative)
            for number, page in enumerate(rendered, start=1):
                folder.pages[doc_id(relative, number)] = page
        else:
            folder.page_counts[relative] = 1
            folder.pages[doc_id(relative, None)] = path
    return folder


def _is_integer(value: object) -> bool:
    """JSON integers only: ``true`` is a bool (an int to Python) and ``1.0`` a float; neither is a page number."""
    return isinstance(value, int) and not isinstance(value, bool)


def _known_name(file: str, folder: DocumentFolder) -> str | None:
    """The folder's name for what a queries file calls ``file``: the escaped name as logs show it
    (``caf\\xe9.png``), or the name itself (``a\\b.png`` for a file with a backslash, ``"caf\\udce9.png"``)."""
    for name in (file, printable(file)):
        if name in folder.page_counts:
            return name
    return None


def _relevant_entry(entry: object, folder: DocumentFolder, where: str) -> tuple[str, int]:
    if not isinstance(entry, dict) or "file" not in entry:
        raise InputError(f'{where}: each "relevant" entry needs a "file" (and "page" for PDFs); got {entry!r}.')
    given, page, grade = str(entry["file"]), entry.get("page"), entry.get("grade", 1)
    file = _known_name(given, folder)
    if file is None:
        raise InputError(f"{where}: file {given!r} is not in {printable(folder.root)}; fix the name (relative to it).")
    is_pdf = file in folder.paged  # a PDF or a multi-page image: pages by number
    if is_pdf and not _is_integer(page):
        kind = "is a PDF" if file.lower().endswith(".pdf") else f"has {folder.page_counts[file]} pages (frames)"
        raise InputError(f'{where}: {file!r} {kind}; give "page" as a 1-based integer, not {page!r}.')
    if not is_pdf and not (page is None or (_is_integer(page) and page == 1)):
        raise InputError(f'{where}: {file!r} is an image and has no pages; drop "page" (got {page!r}).')
    if is_pdf and not 1 <= page <= folder.page_counts[file]:
        raise InputError(
            f"{where}: page {page} of {file!r} is out of range; it has {folder.page_counts[file]} pages (1-based)."
        )
    if not _is_integer(grade) or grade < 0:
        raise InputError(f'{where}: "grade" must be a non-negative integer; got {grade!r}.')
    return doc_id(file, page if is_pdf else None), grade


def read_queries(queries_file: Path, folder: DocumentFolder) -> list[LocalQuery]:
    """Parse and check every line; the first problem stops with its file and line number."""
    shown = printable(queries_file)
    if not queries_file.is_file():
        raise InputError(f"queries file {shown} does not exist; set dataset.queries_file or create it.")
    queries: list[LocalQuery] = []
    seen: dict[str, int] = {}
    for number, raw in jsonl_lines(queries_file):
        if not raw.strip():
            continue
        where = f"{shown}:{number}"
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: not valid JSON ({error.msg}); one JSON object per line.") from None
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(item).__name__}.")
        missing = [key for key in ("query_id", "query", "relevant") if key not in item]
        if missing:
            raise InputError(f"{where}: missing {missing}; each line needs query_id, query and relevant.")
        query_id, text = safe_id(item["query_id"], f"{where}: query_id"), item["query"]
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: query {query_id!r} is empty; write the question or drop the line.")
        if query_id in seen:
            raise InputError(f"{where}: duplicate query_id {query_id!r} (first on line {seen[query_id]}).")
        seen[query_id] = number
        if not isinstance(item["relevant"], list) or not item["relevant"]:
            raise InputError(f'{where}: "relevant" must be a non-empty list of {{"file": ..., "page": ...}}.')
        relevant = dict(_relevant_entry(entry, folder, where) for entry in item["relevant"])
        if not any(grade > 0 for grade in relevant.values()):
            raise InputError(f"{where}: query {query_id!r} has no page with a grade above 0.")
        queries.append(LocalQuery(query_id, text.strip(), relevant, number))
    if not queries:
        raise InputError(f"{shown}: no queries; add one JSON object per line.")
    return queries


def load_folder(cfg: DatasetConfig) -> DocumentFolder:
    root = Path(cfg.path).expanduser()
    folder = scan_pages(root, cfg.dpi, Path(cfg.page_cache).expanduser())
    queries_file = Path(cfg.queries_file)
    folder.queries = read_queries(queries_file if queries_file.is_absolute() else root / queries_file, folder)
    counts = len(folder.page_counts), len(folder.pages), len(folder.queries)
    log.info("%s: %d files, %d pages, %d queries", printable(root), *counts)
    return folder


def open_page(path: Path) -> Image.Image:
    """The decoded page; a file cut short (a truncated JPEG passes the header check) is named, not a traceback."""
    try:
        with Image.open(path) as image:
            return to_rgb(image)
    except IMAGE_ERRORS as error:
        raise _unreadable(path, error) from None


def local_protocol(cfg: DatasetConfig, folder: DocumentFolder, query_ids: set[str]) -> RetrievalProtocol:
    """The chosen queries against the whole corpus: every page of every file, read from disk when encoded
    (memory stays bounded whatever the number of pages)."""
    chosen = [q for q in folder.queries if q.query_id in query_ids]
    return RetrievalProtocol(
        name=cfg.protocol.name,
        queries={q.query_id: q.text for q in chosen},
        corpus={doc: FilePage(path) for doc, path in folder.pages.items()},  # decoded when encoded
        qrels={q.query_id: dict(q.relevant) for q in chosen},
    )


class LocalDocsLayout(CorpusLayout):
    def all_queries(self, cfg: DatasetConfig) -> RetrievalProtocol:
        folder = load_folder(cfg)
        return local_protocol(cfg, folder, {q.query_id for q in folder.queries})
