"""``python -m vdr_exp.label docs=<folder>`` (``vdr-label``): a local web page to write and grade queries for
your own documents, saved to the folder's ``queries.jsonl`` after every change (see vdr_exp.labelling)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vdr_exp.config.validation import _check_bounds
from vdr_exp.errors import VdrError
from vdr_exp.labelling.config import LabelRunConfig, register

register()
log = logging.getLogger(__name__)


def serve(cfg: LabelRunConfig) -> None:
    # The web app, the page index and the model load only to serve: --help and config errors stay instant.
    import uvicorn

    from vdr_exp.labelling.app import build_app
    from vdr_exp.labelling.pages import index_folder
    from vdr_exp.labelling.review import REVIEWED_FILE, ReviewQueue
    from vdr_exp.labelling.search import PageSearch
    from vdr_exp.labelling.store import QueryStore

    root = Path(cfg.docs).expanduser()
    index = index_folder(root, cfg.dpi, Path(cfg.page_cache).expanduser())
    queries = Path(cfg.queries_file)
    store = QueryStore(queries if queries.is_absolute() else root / queries, index.folder, index.refs)
    search = PageSearch(cfg.model, cfg.pixels, cfg.fixtures, index) if cfg.search else None
    review = None
    if cfg.review:
        review = ReviewQueue(Path(cfg.review).expanduser(), QueryStore(root / REVIEWED_FILE, index.folder, index.refs))
    app = build_app(index, store, search, review)
    print(f"labelling {len(index.refs)} pages of {root}; queries go to {store.path}", flush=True)
    print(f"open http://{cfg.host}:{cfg.port}/ (Ctrl-C stops the page; every change is already saved)", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


@hydra.main(config_path="pkg://vdr_exp.conf", config_name="label", version_base="1.3")
def _main(composed: DictConfig) -> None:
    try:
        cfg = OmegaConf.to_object(composed)
        _check_bounds(cfg)
        serve(cfg)
    except VdrError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
