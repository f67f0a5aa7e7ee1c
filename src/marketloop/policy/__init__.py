"""Contact policy (触达策略): consent today; frequency caps, quiet hours and arbitration later."""
