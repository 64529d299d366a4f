"""Link and setup codes: at least 60 secret bits, typeable, stored only as a digest keyed by
the secret key, and burnt after a few wrong tries."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from piyasa.admin import identity, onetime
from piyasa.admin.setup import codes
from piyasa.admin.users import add_user
from piyasa.config import Secret
from piyasa.crypto import SecretBox
from piyasa.db.models import OneTimeCode
from piyasa.services import Services

CODE_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}")  # Crockford base32


async def test_codes_have_60_secret_bits_in_typeable_groups(services: Services) -> None:
    info = await add_user(services, "dave", "viewer")
    issued = [await identity.create_link_code(services, info.id) for _ in range(64)]
    assert all(CODE_RE.fullmatch(code) for code in issued), issued[:3]
    assert len(set(issued)) == len(issued)
    letters = {ch for code in issued for ch in code.replace("-", "")}
    assert len(letters) >= 30  # all of the 32 symbols are in use
    secret_bits = (len(issued[0].replace("-", "")) - onetime.GROUP_LEN) * 5
    assert secret_bits >= 60
    # read aloud and typed on a phone: case, spaces, O for 0 and I/L for 1 are forgiven
    typed = issued[0].lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert (await identity.redeem_link_code(services, typed, "telegram", 42)).ok


async def test_a_copy_of_the_database_cannot_be_checked_offline(services: Services) -> None:
    info = await add_user(services, "erin", "admin")
    code = await codes.create_setup_code(services, info.id)
    async with services.sessions() as session:
        (stored,) = (await session.scalars(select(OneTimeCode.code_hash))).all()
    unkeyed = {
        hashlib.sha256(form.encode()).hexdigest()
        for form in (code, code.replace("-", ""), code.lower(), onetime.normalize_code(code))
    }
    assert stored not in unkeyed
    # the digest depends on the secret key: a service with another key cannot redeem it
    services_key = services.box
    services.box = SecretBox(Secret("another-deployment-secret-key"))
    assert (await codes.redeem_setup_code(services, code, "555")).reason == "invalid"
    services.box = services_key
    # a rotated key list (new key first, old one kept) still matches the stored digest
    services.box = SecretBox(f"a-new-key-for-rotation,{services.settings.secret_key.reveal()}")
    assert (await codes.redeem_setup_code(services, code, "556")).ok


async def test_five_wrong_tries_burn_a_code(services: Services) -> None:
    info = await add_user(services, "faye", "viewer")

    def wrong(code: str) -> str:
        """Right first group (it names the code), wrong secret."""
        raw = code.replace("-", "")
        return raw[:4] + ("2" * 12 if raw[4:] != "2" * 12 else "3" * 12)

    survivor = await identity.create_link_code(services, info.id)
    for i in range(onetime.MAX_ATTEMPTS - 1):
        tried = await identity.redeem_link_code(services, wrong(survivor), "telegram", 100 + i)
        assert tried.reason == "invalid"
    assert (await identity.redeem_link_code(services, survivor, "telegram", 42)).ok

    burnt = await identity.create_link_code(services, info.id)
    for i in range(onetime.MAX_ATTEMPTS):
        tried = await identity.redeem_link_code(services, wrong(burnt), "telegram", 200 + i)
        assert tried.reason == "invalid"
    late = await identity.redeem_link_code(services, burnt, "telegram", 43)
    assert (late.ok, late.reason) == (False, "invalid")

    setup_code = await codes.create_setup_code(services, info.id)
    for _ in range(onetime.MAX_ATTEMPTS):
        assert not (await codes.redeem_setup_code(services, wrong(setup_code), "300")).ok
    assert not await codes.pending_code(services)
