"""One module per job (train, evaluate, mine), each a linear recipe that reads top to bottom, and the steps
they share (:mod:`vdr_exp.jobs.steps`). A job builds from the typed config, hands data to retrieval and
results to :mod:`vdr_exp.runs`; it is imported only when there is something to run (never by dry runs)."""
