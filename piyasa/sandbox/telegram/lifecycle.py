"""Chat lifecycle in the sandbox: a group upgraded to a supergroup, and forum topics.

Modelled on the Bot API documentation (Message, ResponseParameters, sendMessage):

- **Migration.** A basic group upgraded to a supergroup gets a new ``-100…`` id. The old
  chat receives a service message carrying ``migrate_to_chat_id``, the new chat one carrying
  ``migrate_from_chat_id``; members (bots included) keep their status in the new chat. From
  then on every call naming the old id fails with 400 "Bad Request: group chat was upgraded
  to a supergroup chat" and ``parameters.migrate_to_chat_id`` = the new id.
- **Forum topics.** A forum supergroup (``is_forum``) is split into topics; a topic's id
  (``message_thread_id``) is the id of its ``forum_topic_created`` service message.
  Messages in a topic carry ``message_thread_id`` and ``is_topic_message``; messages in
  General carry neither, and a send without ``message_thread_id`` lands in General (a reply
  lands where the message it answers is). An unknown thread is 400 "Bad Request: message
  thread not found".
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_request
from .state import Conversation, Group, World

UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
THREAD_NOT_FOUND = "message thread not found"
TOPIC_ICON_COLOR = 0x6FB9F0  # one of the six colours Telegram offers for topic icons


def upgraded(group: Group) -> ApiError | None:
    """The error Telegram answers for a call naming a group that became a supergroup."""
    if group.migrated_to is None:
        return None
    return ApiError(400, UPGRADED, {"migrate_to_chat_id": group.migrated_to})


def supergroup_id(old_id: int) -> int:
    """A plausible supergroup id for a basic group's (Telegram's are -100 then digits)."""
    return int(f"-100{abs(old_id)}")


def migrate(
    world: World, chat_id: int, user_id: int, new_id: int | None = None
) -> tuple[Group, dict[str, Any], dict[str, Any]]:
    """Upgrade basic group ``chat_id`` (``user_id`` does it); returns the new group and the
    two service messages (old chat, new chat) for the caller to deliver."""
    old = world.groups.get(chat_id)
    if old is None or old.type != "group" or old.migrated_to is not None:
        raise ValueError(f"{chat_id} is not a basic group that can be upgraded")
    new_id = supergroup_id(chat_id) if new_id is None else new_id
    if new_id in world.groups or not str(new_id).startswith("-100"):
        raise ValueError(f"{new_id} is taken or not a supergroup id")
    user = world.users[user_id].user()
    new = Group(new_id, old.title, "supergroup", old.username, dict(old.status))
    world.groups[new_id] = new
    gone = world.store(
        world.conversation(chat_id), {"from": user, "migrate_to_chat_id": new_id}, None
    )
    old.migrated_to = new_id
    came = world.store(
        world.conversation(new_id), {"from": user, "migrate_from_chat_id": chat_id}, None
    )
    return new, gone, came


def create_topic(
    world: World, chat_id: int, user_id: int, name: str, thread_id: int | None = None
) -> dict[str, Any]:
    """``user_id`` opens topic ``name`` in forum ``chat_id``; returns the service message
    (its ``message_id`` is the topic's ``message_thread_id``). ``thread_id`` picks that id
    when it is still ahead of the chat's message ids (ids only grow)."""
    group = world.groups.get(chat_id)
    if group is None or not group.is_forum:
        raise ValueError(f"{chat_id} is not a forum supergroup")
    conv = world.conversation(chat_id)
    if thread_id is not None:
        if thread_id < conv.next_id:
            raise ValueError(f"message id {thread_id} is already used in {chat_id}")
        conv.next_id = thread_id
    thread = conv.next_id
    group.topics[thread] = name
    body = {
        "from": world.users[user_id].user(),
        "message_thread_id": thread,
        "is_topic_message": True,
        "forum_topic_created": {"name": name, "icon_color": TOPIC_ICON_COLOR},
    }
    return world.store(conv, body, None)


def thread_fields(
    world: World, conv: Conversation, thread_id: int | None, replied: dict[str, Any] | None
) -> dict[str, Any]:
    """The thread fields a message sent to ``conv`` gets (validated before anything is
    stored): the named topic, or the replied-to message's topic, or none (General)."""
    group = world.groups.get(conv.chat["id"])
    if not thread_id:
        if group is not None and group.is_forum and replied and replied.get("is_topic_message"):
            return {"message_thread_id": replied["message_thread_id"], "is_topic_message": True}
        return {}
    if group is None:
        return {"message_thread_id": thread_id}  # private chats: stored as given
    if group.is_forum:
        if thread_id not in group.topics:
            raise bad_request(THREAD_NOT_FOUND)
        return {"message_thread_id": thread_id, "is_topic_message": True}
    if thread_id not in conv.messages:  # a reply thread of an ordinary supergroup
        raise bad_request(THREAD_NOT_FOUND)
    return {"message_thread_id": thread_id}


def user_message_thread(world: World, chat_id: int, thread_id: int | None) -> dict[str, Any]:
    """The thread fields of a human's message in ``chat_id`` (``thread_id`` None: General)."""
    if thread_id is None:
        return {}
    group = world.groups.get(chat_id)
    if group is None or not group.is_forum or thread_id not in group.topics:
        raise ValueError(f"no topic {thread_id} in forum {chat_id}")
    return {"message_thread_id": thread_id, "is_topic_message": True}
