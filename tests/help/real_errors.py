"""Real error texts, as the libraries and platforms word them, and the knowledge-base
entry each one must be recognised as. Sources: Telegram Bot API descriptions as aiogram
reports them ("Telegram server says - ..."), openai SDK errors ("Error code: N - {...}"),
SQLAlchemy/asyncpg/aiosqlite/psycopg, redis-py, slack_sdk's SlackApiError, the kernel and
CPython's OSError texts, and Piyasa's own refusals and check lines."""

from __future__ import annotations

REAL = [
    # Telegram
    ("Telegram server says - Too Many Requests: retry after 5", "tg-429"),
    (
        "TelegramRetryAfter: Flood control exceeded on method 'SendMessage' in chat -100123. Retry in 17 seconds.",
        "tg-429",
    ),
    (
        "Telegram server says - Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        "tg-409-conflict",
    ),
    (
        "Telegram server says - Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        "tg-webhook-active",
    ),
    ("Telegram server says - Unauthorized", "tg-401-unauthorized"),
    ("TelegramUnauthorizedError: Telegram server says - Unauthorized", "tg-401-unauthorized"),
    ("Telegram server says - Forbidden: bot was kicked from the group chat", "tg-403-kicked"),
    (
        "Telegram server says - Forbidden: bot is not a member of the supergroup chat",
        "tg-403-kicked",
    ),
    ("Telegram server says - Forbidden: bot was blocked by the user", "tg-403-blocked"),
    (
        "Telegram server says - Bad Request: not enough rights to send text messages to the chat",
        "tg-no-rights",
    ),
    ("Telegram server says - Bad Request: chat not found", "tg-chat-not-found"),
    (
        "Telegram server says - Bad Request: group chat was upgraded to a supergroup chat",
        "tg-chat-migrated",
    ),
    ("Telegram server says - Bad Request: message is too long", "tg-message-too-long"),
    (
        'Telegram server says - Bad Request: can\'t parse entities: Unsupported start tag "b1" at byte offset 12',
        "tg-parse-entities",
    ),
    (
        "Telegram server says - Bad Request: message is not modified: specified new message content and reply markup are exactly the same",
        "tg-not-modified",
    ),
    ("Telegram server says - Bad Request: BUTTON_DATA_INVALID", "tg-button-invalid"),
    ("Telegram server says - Bad Request: message thread not found", "tg-thread-not-found"),
    (
        "TelegramNetworkError: HTTP Client says - ClientConnectorError: Cannot connect to host api.telegram.org:443 ssl:default [Connect call failed ('149.154.167.220', 443)]",
        "tg-unreachable",
    ),
    ("Telegram server says - Bad Gateway", "tg-unreachable"),
    # OpenAI-compatible
    (
        "Error code: 401 - {'error': {'message': 'Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.', 'type': 'invalid_request_error', 'param': None, 'code': 'invalid_api_key'}}",
        "llm-invalid-key",
    ),
    (
        "Error code: 429 - {'error': {'message': 'You exceeded your current quota, please check your plan and billing details.', 'type': 'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}",
        "llm-quota",
    ),
    (
        "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.', 'type': 'requests', 'param': None, 'code': 'rate_limit_exceeded'}}",
        "llm-rate-limit",
    ),
    (
        "Error code: 404 - {'error': {'message': 'The model `gpt-9-turbo` does not exist or you do not have access to it.', 'type': 'invalid_request_error', 'param': None, 'code': 'model_not_found'}}",
        "llm-model-not-found",
    ),
    ("openai.APITimeoutError: Request timed out.", "llm-timeout"),
    (
        "Error code: 503 - {'error': {'message': 'The server is overloaded or not ready yet.', 'type': 'server_error'}}",
        "llm-5xx",
    ),
    (
        "openai.InternalServerError: Error code: 500 - {'error': {'message': 'The server had an error while processing your request.'}}",
        "llm-5xx",
    ),
    ("openai.APIConnectionError: Connection error.", "llm-connection"),
    (
        "Error code: 400 - {'error': {'message': \"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.\", 'code': 'context_length_exceeded'}}",
        "llm-context-length",
    ),
    # Databases
    (
        "(sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO outbox (bot_id, chat_id) VALUES (?, ?)]",
        "db-locked",
    ),
    (
        "(sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) <class 'OSError'>: Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)",
        "db-pg-refused",
    ),
    (
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
        "db-pg-refused",
    ),
    (
        'asyncpg.exceptions.InvalidPasswordError: password authentication failed for user "piyasa"',
        "db-pg-auth",
    ),
    (
        "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already",
        "db-pg-too-many",
    ),
    ("(sqlite3.OperationalError) no such table: bots", "db-schema-missing"),
    (
        "(sqlalchemy.dialects.postgresql.asyncpg.ProgrammingError) <class 'asyncpg.exceptions.UndefinedTableError'>: relation \"notify_events\" does not exist",
        "db-schema-missing",
    ),
    ("(sqlite3.OperationalError) attempt to write a readonly database", "db-readonly"),
    (
        "asyncpg.exceptions.ConnectionDoesNotExistError: connection was closed in the middle of operation",
        "db-pg-lost",
    ),
    # Redis
    (
        "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused.",
        "redis-refused",
    ),
    ("redis.exceptions.AuthenticationError: NOAUTH Authentication required.", "redis-auth"),
    (
        "redis.exceptions.OutOfMemoryError: OOM command not allowed when used memory > 'maxmemory'.",
        "redis-oom",
    ),
    # System
    ("OSError: [Errno 28] No space left on device: '/data/piyasa.db-journal'", "system-disk-full"),
    ("(sqlite3.OperationalError) database or disk is full", "system-disk-full"),
    ("MemoryError", "system-oom"),
    ("OSError: [Errno 12] Cannot allocate memory", "system-oom"),
    ("OSError: [Errno 24] Too many open files", "system-open-files"),
    (
        "OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 8080): address already in use",
        "system-port-in-use",
    ),
    ("socket.gaierror: [Errno -3] Temporary failure in name resolution", "system-dns"),
    ("System clock synchronized: no", "system-clock-skew"),
    # Slack
    (
        "slack_sdk.errors.SlackApiError: The request to the Slack API failed. (url: https://slack.com/api/chat.postMessage)\nThe server responded with: {'ok': False, 'error': 'not_in_channel'}",
        "slack-not-in-channel",
    ),
    (
        "Invalid request signature detected (signature: v0=abc, timestamp: 1700000000, body: token=x)",
        "slack-invalid-signature",
    ),
    ("The server responded with: {'ok': False, 'error': 'ratelimited'}", "slack-ratelimited"),
    ("The server responded with: {'ok': False, 'error': 'invalid_auth'}", "slack-invalid-auth"),
    (
        "The server responded with: {'ok': False, 'error': 'channel_not_found'}",
        "slack-channel-not-found",
    ),
    # Sign-in and security
    (
        "That code is not right. Check your authenticator app and send the current code.",
        "security-totp-rejected",
    ),
    (
        "piyasa.crypto.SecretBoxError: cannot decrypt: wrong PIYASA_SECRET_KEY or tampered data",
        "security-secret-key",
    ),
    # Backups
    ("backup 2026-11-30T03:00 failed: pg_dump exited with 1", "backup-failed"),
    ("pg_dump: error: server version mismatch", "backup-tool-missing"),
    (
        "restore of backup-2026-11-30.zst finished, but bot tokens cannot be read: cannot decrypt with this secret key",
        "backup-restore-key",
    ),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'pg_dump'", "backup-tool-missing"),
    # Alerts
    ("alerts have no destination: nobody hears of a problem", "alerts-no-destination"),
    ("no destination: no admin chat, Slack channel or route", "alerts-no-destination"),
    (
        "aiosmtplib.errors.SMTPAuthenticationError: (535, '5.7.8 Username and Password not accepted')",
        "alerts-email-failed",
    ),
    # Configuration
    (
        "active_hours '9-18': '9-18' is not a range; write HH:MM-HH:MM ranges separated by commas",
        "config-active-hours",
    ),
    (
        "piyasa: already running (pid 4242); use `piyasa restart` or `piyasa stop`",
        "config-two-instances",
    ),
    (
        "zoneinfo._common.ZoneInfoNotFoundError: 'No time zone found with key GMT+3'",
        "config-timezone",
    ),
    # Using the admin chat: the bot's own refusals and errors (chatops/locales)
    (
        "This command does not exist or you may not run it. /help lists what you can run.",
        "chat-access-denied",
    ),
    (
        "Bu komut yok ya da çalıştırma yetkiniz yok. /help çalıştırabileceklerinizi listeler.",
        "chat-access-denied",
    ),
    ("I don't know you yet. Ask a Piyasa admin for a link code", "chat-not-linked"),
    ("Your Piyasa account is locked. Ask an admin to unlock it.", "chat-account-locked"),
    ("This button has expired or is not yours. Run the command again.", "chat-button-expired"),
    (
        "This button cannot do that. Run the command again and use the buttons it shows.",
        "chat-button-expired",
    ),
    ("Usage: lang [tr|en]", "chat-bad-input"),
    (
        "That is too long: at most 4096 characters here. Shorten it and send it again.",
        "chat-bad-input",
    ),
    (
        "For your safety this only works in a private chat with me. Open it and send it there.",
        "chat-private-only",
    ),
    ("I don't run forwarded messages or messages sent on behalf of a channel.", "chat-forwarded"),
    (
        "This needs a confirmation with your authenticator app: send me the 6-digit code",
        "chat-stepup-needed",
    ),
    ("Too many wrong codes. Wait 5 minutes and try again.", "chat-stepup-needed"),
    (
        "Something went wrong on our side; it has been logged. Try again in a minute.",
        "chat-internal-error",
    ),
    (
        "The database is unavailable, try after recovery. Meanwhile /help, whoami and health still answer.",
        "chat-db-unavailable",
    ),
    ("This conversation expired: it waited 15 minutes for an answer.", "chat-dialog-expired"),
]
