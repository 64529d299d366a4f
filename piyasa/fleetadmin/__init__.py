"""Fleet administration services: bots, chats, settings, preview, limits."""
