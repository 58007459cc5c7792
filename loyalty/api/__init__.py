"""The loyalty app's REST endpoints: bonuses, checkout quotes, orders."""
