"""The real-time engine: triggers, durable timers, journeys, channels and contact policy (M4)."""
