"""Encode -> rank -> metrics for a model on a protocol, the embedding cache and MTEB-style result files.
Returns data only: nothing here knows MLflow or Hydra."""
