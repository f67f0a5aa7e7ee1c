"""Tags (标签): definitions, the starter library, refresh and history, RFM / AIPL / lifecycle stratification (M3)."""
