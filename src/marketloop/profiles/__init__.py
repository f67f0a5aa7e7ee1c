"""Customer profiles: the 360° view and the batch import of core-banking data (clean, merge, dedupe) that feeds it."""
