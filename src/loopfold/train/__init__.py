"""Training, baselines and evaluation."""
