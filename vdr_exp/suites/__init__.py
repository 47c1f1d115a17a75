"""Benchmark suites the field reports (ViDoRe v1, v2, v3) as MTEB defines them: task names, Hub datasets,
pinned revisions, splits, languages and main scores all come from the ``mteb`` package, never copied here."""
