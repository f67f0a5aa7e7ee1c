"""Channel adapters: one module per provider protocol (SMS gateway, push, WeCom, WeChat, SMTP, webhook, stored)."""
