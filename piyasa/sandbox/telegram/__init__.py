"""A local, protocol-faithful Telegram Bot API for demo mode, tests and benchmarks.

Real clients (aiogram's ``Bot``) talk to it over HTTP exactly as to api.telegram.org,
including Telegram's limits and error responses; tests play the humans through
:class:`TelegramSandbox` and read back what the bots did.
"""

from .clock import RealClock, SandboxClock
from .errors import ApiError
from .limits import RateLimiter, SandboxLimits, allowed_max
from .server import TelegramSandbox
from .state import BotAccount, Group, UserAccount

__all__ = [
    "ApiError",
    "BotAccount",
    "Group",
    "RateLimiter",
    "RealClock",
    "SandboxClock",
    "SandboxLimits",
    "TelegramSandbox",
    "UserAccount",
    "allowed_max",
]
