"""Notifications: events in, durable notifications, delivery to chat, email, webhooks and
Apprise services (``channels/``), and the per-user digest (``digest.py``)."""
