"""Models: churn, conversion and propensity on LightGBM, their baselines, datasets, tuning, metrics."""
