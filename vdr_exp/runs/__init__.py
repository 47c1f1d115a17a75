"""Hydra jobs and MLflow runs: tracking, sweep parents, skip-completed and resume, interrupts, secrets."""
