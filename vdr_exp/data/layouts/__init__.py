"""Dataset layouts (``dataset.format``): how a dataset becomes training rows and an evaluation protocol.

:data:`LAYOUTS` is the one dispatch point. A new format is one module here (a :class:`Layout` subclass) and
one line in :data:`LAYOUTS` (plus a member of :class:`vdr_exp.config.DatasetFormat`).
"""

from __future__ import annotations

from vdr_exp.config import DatasetConfig, DatasetFormat
from vdr_exp.data.layouts.base import Layout
from vdr_exp.data.layouts.beir import BeirLayout
from vdr_exp.data.layouts.local_docs import LocalDocsLayout
from vdr_exp.data.layouts.pairs import PairsLayout

LAYOUTS: dict[DatasetFormat, Layout] = {
    DatasetFormat.pairs: PairsLayout(),
    DatasetFormat.local_docs: LocalDocsLayout(),
    DatasetFormat.beir: BeirLayout(),
}


def layout_for(cfg: DatasetConfig) -> Layout:
    return LAYOUTS[cfg.format]
