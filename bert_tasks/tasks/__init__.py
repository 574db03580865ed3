"""Task adapters and their registry."""
