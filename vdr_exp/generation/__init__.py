"""Training queries written by a vision-language model for your own pages, and the filter that keeps only the
trustworthy ones (``python -m vdr_exp.generate docs=<folder> generator=<option>``)."""
