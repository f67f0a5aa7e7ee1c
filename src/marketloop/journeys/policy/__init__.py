"""Contact policy (触达策略): frequency caps, quiet hours, consent, suppression lists, priority arbitration.

`rules` is pure (the decision); `service` gathers the facts and records every decision in the contact history.
"""
