"""The demo world `piyasa up --sandbox` starts: an admin bot, a small fleet, groups, an admin.

Tokens here only exist inside the local sandbox; they are fixed so a person can point
their own aiogram bot at the sandbox with a known token.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sqlalchemy import select

from piyasa.config import Settings
from piyasa.crypto import fingerprint
from piyasa.db.models import Bot, Chat, Identity, User
from piyasa.services import Services

ADMIN_BOT_TOKEN = "7000000000:SANDBOX-admin-bot-token-do-not-use-00"
FLEET = [
    (
        "7000000001:SANDBOX-fleet-bot-1-token-do-not-use-0",
        "borsaci_bot",
        "Borsacı Bot",
        {"name": "Borsacı", "style": "teknik", "language": "tr", "topics": ["bist", "macro"]},
    ),
    (
        "7000000002:SANDBOX-fleet-bot-2-token-do-not-use-0",
        "dovizci_bot",
        "Dövizci Bot",
        {"name": "Dövizci", "style": "temkinli", "language": "tr", "topics": ["fx", "macro"]},
    ),
    (
        "7000000003:SANDBOX-fleet-bot-3-token-do-not-use-0",
        "kriptocu_bot",
        "Kriptocu Bot",
        {"name": "Kriptocu", "style": "iyimser", "language": "tr", "topics": ["crypto"]},
    ),
    (
        "7000000004:SANDBOX-fleet-bot-4-token-do-not-use-0",
        "macro_news_bot",
        "Macro News Bot",
        {"name": "Macro News", "style": "haberci", "language": "en", "topics": ["macro", "fx"]},
    ),
]
ADMIN_USER_ID = 900001
ADMIN_USERNAME = "sandbox_admin"
ADMIN_GROUP_ID = -1009000000001
GROUPS = [
    (-1009000000101, "BIST Sohbet", ["bist", "macro"]),
    (-1009000000102, "Döviz & Kripto", ["fx", "crypto", "macro"]),
]
FOOTER = "yatırım tavsiyesi değildir"


DEMO_DIR = "demo"
DEMO_DATABASE_FILE = "piyasa-demo.db"


def demo_settings(settings: Settings) -> Settings:
    """The settings the demo runs on: its own SQLite file under ``DATA_DIR/demo/`` and an
    in-process cache, never the configured database or Redis (the demo admin is public)."""
    demo_dir = settings.data_dir / DEMO_DIR
    demo_dir.mkdir(mode=0o700, exist_ok=True)
    return dataclasses.replace(
        settings,
        database_url=f"sqlite+aiosqlite:///{(demo_dir / DEMO_DATABASE_FILE).resolve()}",
        redis_url="",
        sandbox=True,
    )


@dataclass
class DemoWorld:
    admin_bot_token: str = ADMIN_BOT_TOKEN
    admin_chat_id: int = ADMIN_GROUP_ID
    admin_user_id: int = ADMIN_USER_ID
    fleet_tokens: list[str] = field(default_factory=lambda: [t for t, *_ in FLEET])
    group_ids: list[int] = field(default_factory=lambda: [g for g, *_ in GROUPS])


def seed_sandbox(sb) -> DemoWorld:  # type: ignore[no-untyped-def]
    """Create the demo accounts and chats inside a running TelegramSandbox."""
    world = DemoWorld()
    admin_bot = sb.add_bot(
        token=ADMIN_BOT_TOKEN, username="piyasa_admin_bot", first_name="Piyasa Admin"
    )
    sb.add_user(
        user_id=ADMIN_USER_ID,
        first_name="Sandbox Admin",
        username=ADMIN_USERNAME,
        language_code="tr",
    )
    sb.add_user(
        user_id=900002, first_name="Mehmet", username="mehmet_yatirimci", language_code="tr"
    )
    sb.add_user(user_id=900003, first_name="Jane", username="jane_trader", language_code="en")
    fleet_ids = [sb.add_bot(token=t, username=u, first_name=n).id for t, u, n, _ in FLEET]
    sb.add_group(
        chat_id=ADMIN_GROUP_ID, title="Piyasa Yönetim", members=[admin_bot.id, ADMIN_USER_ID]
    )
    for chat_id, title, _topics in GROUPS:
        sb.add_group(
            chat_id=chat_id, title=title, members=[*fleet_ids, ADMIN_USER_ID, 900002, 900003]
        )
    return world


async def seed_database(services: Services) -> None:
    """Insert the demo fleet, chats and the sandbox admin once (idempotent)."""
    async with services.sessions() as session, session.begin():
        known = set((await session.scalars(select(Bot.token_fingerprint))).all())
        for token, username, name, persona in FLEET:
            if fingerprint(token) in known:
                continue
            session.add(
                Bot(
                    telegram_id=int(token.split(":")[0]),
                    token_encrypted=services.box.encrypt(token),
                    token_fingerprint=fingerprint(token),
                    username=username,
                    display_name=name,
                    persona={**persona, "footer": FOOTER},
                )
            )
        chats = set((await session.scalars(select(Chat.telegram_id))).all())
        for chat_id, title, topics in GROUPS:
            if chat_id not in chats:
                session.add(Chat(telegram_id=chat_id, title=title, topics=topics))
        admin = await session.scalar(select(User).where(User.username == ADMIN_USERNAME))
        if admin is None:
            admin = User(username=ADMIN_USERNAME, role="admin")
            admin.identities.append(Identity(provider="telegram", external_id=str(ADMIN_USER_ID)))
            session.add(admin)
