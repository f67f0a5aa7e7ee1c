"""Channels (触达渠道): rendering, rate limits, the send service with idempotency and multi-wave fallback,
receipts and the learned channel preference. Adapters behind `marketloop.ports.channels.Channel` live in
`marketloop.adapters.channels`."""
