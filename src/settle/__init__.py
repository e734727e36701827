"""Settle: a self-hostable invoicing and payments API server (ProcessOut and Reepay dialects)."""

__version__ = "0.1.0"
