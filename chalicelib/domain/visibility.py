"""Who may see and who may change an image (spec §15). The one visibility rule."""
from chalicelib.domain.image_meta import DELETED, PENDING_DELETE


def can_see(context, image, is_member):
    """`is_member()` is asked only when nothing else decides (it costs a read)."""
    if context.is_admin:
        return True
    if image['deleted'] or image['status'] in (DELETED, PENDING_DELETE):
        return False
    if image['owner'] is None or image['is_public']:
        return True
    if context.tenant is None:
        return False
    return image['owner'] == context.tenant or is_member()


def can_modify(context, image):
    if context.is_admin:
        return True
    return context.tenant is not None and image['owner'] == context.tenant
