"""``classify``: text classification and regression on the user's own data (any labels; multi-label too)."""
