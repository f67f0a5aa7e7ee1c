"""Insight analytics: events, funnels, retention, paths, attribution, compiled through the segment AST's printers (M5)."""
