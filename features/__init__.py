"""Feature-set definitions (TOML), installed as ketapredict.feature_sets."""
