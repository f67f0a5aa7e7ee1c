"""Insight analytics: events, funnels, retention, paths, attribution, through the segment printers (M5)."""
