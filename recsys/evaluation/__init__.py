"""Offline evaluation: splits, metrics with intervals, baselines and ablations."""
