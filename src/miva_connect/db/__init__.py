"""Persistence: ORM models, engine and transactions, repositories."""
