"""Fill a catalog quickly, straight through the storage layer.

Items are written with BatchWriteItem (25 a request) in exactly the form
`ImageCatalog.create` stores them (same model, same index keys, version 1), so
10,000 images take seconds instead of minutes under moto.
"""
import uuid

from chalicelib.domain import image_meta as im
from chalicelib.storage.catalog import _to_model
from chalicelib.storage.models import ImageMemberModel, ImageModel

OWNERS = ('tenant-a', 'tenant-b', 'tenant-c', 'tenant-d')


def fill_catalog(count, owners=OWNERS, public_every=3, shared_with=None, share_every=0):
    """`count` active images spread over `owners`; every `public_every`-th public.

    With `shared_with`, every `share_every`-th image also gets that member.
    Returns the ids in creation order.
    """
    ids = []
    with ImageModel.batch_write() as images, ImageMemberModel.batch_write() as members:
        for n in range(count):
            image = im.new_image(str(uuid.uuid4()), {
                'name': 'image-%05d' % n, 'disk_format': 'raw', 'container_format': 'bare',
                'size': 1024, 'is_public': bool(public_every) and n % public_every == 0,
            }, owners[n % len(owners)], im.ACTIVE, im.now_string())
            model = _to_model(image)
            model.version = 1   # what the conditional save of a create would write
            images.save(model)
            ids.append(image['id'])
            if shared_with and share_every and n % share_every == 0:
                members.save(ImageMemberModel(
                    image['id'], shared_with, can_share=False,
                    created_at=image['created_at'], updated_at=image['created_at'],
                    image_created_key=im.created_key(image)))
    return ids
