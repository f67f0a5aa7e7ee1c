"""Insight analytics (分析模型): event analysis, funnels, retention, paths, attribution, frequency, distributions.

Specs are frozen data (`spec`), read from JSON (`parse`), compiled to the
warehouse's SQL through the segment printers (`sql`), run and cached by the
`service`, shaped into results (`results`), drilled down to customers, and
watched by alerts (`alerts`).
"""
