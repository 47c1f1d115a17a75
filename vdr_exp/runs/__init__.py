"""MLflow runs: tracking, run references, logged models, skip-completed and resume, seeds, per-step training logs."""
