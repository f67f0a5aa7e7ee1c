"""Experiments and campaign effect: lift, confidence intervals, p-values, CUPED, sample-ratio checks (M5)."""
