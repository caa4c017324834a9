"""Who may see and who may change an image (v1 §15). The one visibility rule."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from chalicelib.domain.image_meta import DELETED, PENDING_DELETE

if TYPE_CHECKING:
    from chalicelib.domain.context import RequestContext
    from chalicelib.domain.ports import ImageRecord


def can_see(context: RequestContext, image: ImageRecord, is_member: Callable[[], bool],
            deleted_too: bool = False) -> bool:
    """`is_member()` is asked only when nothing else decides (it costs a read);
    `deleted_too`: a deleted image is judged as a live one (changes-since markers)."""
    if context.is_admin:
        return True
    if not deleted_too and (image['deleted'] or image['status'] in (DELETED, PENDING_DELETE)):
        return False
    if image['owner'] is None or image['is_public']:
        return True
    if context.tenant is None:
        return False
    return image['owner'] == context.tenant or is_member()


def can_modify(context: RequestContext, image: ImageRecord) -> bool:
    if context.is_admin:
        return True
    return context.tenant is not None and image['owner'] == context.tenant
