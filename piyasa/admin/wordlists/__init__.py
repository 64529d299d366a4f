"""Package data: the shipped common-password list."""
