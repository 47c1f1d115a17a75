"""The labelling page (``python -m vdr_exp.label docs=<folder>``): write, find and grade queries for your own
documents in the browser, saved to the folder's ``queries.jsonl`` in the ``local_docs`` format; review mode
accepts, edits or rejects generated queries (:mod:`vdr_exp.generation`)."""
