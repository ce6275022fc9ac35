"""The run's stages: each declares what it needs and gives and returns a typed result."""
