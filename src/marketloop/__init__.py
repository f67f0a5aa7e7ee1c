"""marketloop: a self-hosted closed-loop marketing platform for banks."""

__version__ = "0.1.0"
