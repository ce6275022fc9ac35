"""Segments, rules and models: fitted on a portrait, logged to MLflow, registered by alias."""

from training import legacy

legacy.install()
