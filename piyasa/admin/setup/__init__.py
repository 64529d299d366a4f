"""Setup: from an empty data dir to a running fleet, by CLI (`piyasa setup`) or by chat.

One module per concern, all plain async services the surfaces render:

- ``checks``     what the machine and the configured connections need (setup + `piyasa check`)
- ``verify``     talk to Telegram (getMe/getChat), the LLM (models.list), PostgreSQL, Redis
- ``configfile`` the data dir's ``.env``: atomic, mode 0600, secrets encrypted (``enc:v1:``)
- ``codes``      the one-time ``/setup CODE`` that hands the CLI's admin over to Telegram
- ``wizard``     the chat wizard's persisted state and [Start system] (apply + hot reload)
- ``dbcopy``     `piyasa db copy --to URL`: SQLite -> PostgreSQL with row-count checks
- ``pidfile``    `piyasa up --detach`, `stop`, `restart`, `status`
"""
