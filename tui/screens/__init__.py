"""Modal screens: questions (host keys, secrets, confirmations) and forms."""
