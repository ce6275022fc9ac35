"""portrait: customer portraits, segments, product rules and next-best-product models."""
