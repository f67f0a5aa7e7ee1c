"""Test helpers users can import: fakes, a frozen clock, and the port contract suites."""
