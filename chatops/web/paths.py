"""Paths the chat surfaces serve on Piyasa's web server (one definition, no heavy imports)."""

SLACK_EVENTS_PATH = "/slack/events"
TELEGRAM_WEBHOOK_PATH = "/telegram/webhook"
