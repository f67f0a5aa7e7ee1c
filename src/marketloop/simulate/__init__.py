"""The synthetic bank simulator (M2): a bank's customers, products, balances, transactions and behaviour.

`run.simulate` fills a data directory's bank tables and event log with a
bank that behaves plausibly, and writes the hidden ground truth beside it
(`ground_truth/`: each customer's latent propensities and the response model
of touches), so later issues can measure whether OneID, models, journeys and
A/B tests recover the truth. Everything is vectorised (numpy, polars) and
deterministic for a seed.
"""
