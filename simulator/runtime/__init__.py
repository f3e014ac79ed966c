"""Asyncio drivers that run the pure device core against real brokers."""
