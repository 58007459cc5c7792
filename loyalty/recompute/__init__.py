"""Recomputing customer figures, statuses and RFM scores: set-based SQL on PostgreSQL for the
whole base, customer by customer in Python for touched customers and on SQLite."""
