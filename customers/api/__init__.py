"""The customers app's REST endpoints (/api/v1/customers/...)."""
