"""Experiment definitions (TOML), installed as ketapredict.experiment_files."""
