"""The virtual cohort: a hierarchical generative model of patients on ketamine.

- :mod:`.population`: who a trial recruits, which values go missing, and what is known of a
  missing one;
- :mod:`.model`: the course of a patient (nonspecific and drug terms on the log-odds of the
  remaining symptoms, trial random effects, visit fluctuation) and its exact probabilities;
- :mod:`.simulate`: parallel trials, crossovers and the pooled cohort;
- :mod:`.calibration`: the cohort against published evidence (``targets.toml``);
- :mod:`.fit`: the procedure that fits ``parameters.toml`` to the *fit* targets.

The public names are re-exported from :mod:`ketapredict`.
"""
