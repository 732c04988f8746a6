"""Benchmarks of the collection: a load tool, and scenarios that deploy under load."""
