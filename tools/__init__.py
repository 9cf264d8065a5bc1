"""Shared plumbing for every paper folder: environments, configs, run records, replay, results."""
