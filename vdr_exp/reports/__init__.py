"""Leaderboards and plots, built from what tracking recorded (MLflow runs) and nothing else."""
