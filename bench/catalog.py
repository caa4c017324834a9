"""Fill a catalog quickly, straight through the storage layer."""
import uuid

from chalicelib.domain import image_meta as im
from chalicelib.storage.catalog import ImageCatalog
from chalicelib.storage.models import ImageMemberModel

OWNERS = ('tenant-a', 'tenant-b', 'tenant-c', 'tenant-d')


def fill_catalog(count, owners=OWNERS, public_every=3, shared_with=None, share_every=0):
    """`count` active images spread over `owners`; every `public_every`-th public.

    With `shared_with`, every `share_every`-th image also gets that member.
    """
    catalog = ImageCatalog()
    for n in range(count):
        image = im.new_image(str(uuid.uuid4()), {
            'name': 'image-%05d' % n, 'disk_format': 'raw', 'container_format': 'bare',
            'size': 1024, 'is_public': public_every and n % public_every == 0,
        }, owners[n % len(owners)], im.ACTIVE, im.now_string())
        catalog.create(image)
        if shared_with and share_every and n % share_every == 0:
            ImageMemberModel(image['id'], shared_with, can_share=False,
                             created_at=image['created_at'], updated_at=image['created_at'],
                             image_created_key=im.created_key(image)).save()
