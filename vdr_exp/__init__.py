"""vdr-exp: config-driven experiments for Visual Document Retrieval."""
