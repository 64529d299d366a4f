"""Notification channels beyond chat: email (SMTP), signed webhooks, and Apprise's services.

The notification core calls :func:`build_channel` with an operator's configuration and then
``send`` / ``check`` on what it returns; see ``base.py`` for the contract and
docs/notifications.md for the operator's view.
"""

from piyasa.admin.notify.channels.base import (
    KINDS,
    SEVERITIES,
    Channel,
    DeliveryError,
    OutgoingMessage,
    build_channel,
)
from piyasa.admin.notify.channels.problems import ChannelConfigError, Problem

__all__ = [
    "KINDS",
    "SEVERITIES",
    "Channel",
    "ChannelConfigError",
    "DeliveryError",
    "OutgoingMessage",
    "Problem",
    "build_channel",
]
