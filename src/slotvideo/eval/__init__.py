"""Metric runners: average a model's per-sample metrics over a split (``slotvideo evaluate``)."""
