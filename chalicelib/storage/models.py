"""PynamoDB models: the images table and the image members table.

Listing never scans: sparse global secondary indexes hold exactly the images of
each visibility set of v1 §13.1, sorted by `created_key` (created_at + id,
the default sort with its tie-breaker); `name-images` holds the same images by
name, for the exact `name` filter; `audience-changes` holds, by last update, the
public images and each owner's private ones, deleted and killed included, for
`changes-since`.
"""
from pynamodb.attributes import (BooleanAttribute, MapAttribute, NumberAttribute,
                                 UnicodeAttribute, VersionAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

PUBLIC_PARTITION = 'public'
CATALOG_PARTITION = 'image'
OWNER_AUDIENCE_PREFIX = 'owner#'   # never equal to PUBLIC_PARTITION, whatever the owner
KEY_MAX_BYTES = 2048   # of a partition key value (a GSI's hash key included)


def name_key(name):
    """An image name as a `name-images` key, or None where it cannot be one (empty,
    not UTF-8 encodable, longer than a key may be: names are at most 255 characters)."""
    if not name:
        return None
    try:
        encoded = name.encode('utf-8')
    except UnicodeEncodeError:
        return None
    return name if len(encoded) <= KEY_MAX_BYTES else None


def audience(is_public, owner):
    """The `audience-changes` partition of an image: 'public', or its owner's for a
    private image (None, so not indexed, for a private owner-less one: only members
    see those). Each image is in one partition; public + own = the caller's two."""
    if is_public:
        return PUBLIC_PARTITION
    return OWNER_AUDIENCE_PREFIX + owner if owner else None


class _Meta:
    """Where the tables are: set by bind_tables when the stores are built (never at
    import, so that the settings in force are the ones used)."""
    region: str | None = None
    host: str | None = None
    billing_mode = 'PAY_PER_REQUEST'


class PublicImagesIndex(GlobalSecondaryIndex):
    """Public images that default listings show (not deleted, not killed)."""
    class Meta:
        index_name = 'public-images'
        projection = AllProjection()
    public_listed = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class OwnerImagesIndex(GlobalSecondaryIndex):
    """Each owner's images that default listings show."""
    class Meta:
        index_name = 'owner-images'
        projection = AllProjection()
    owner_listed = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class NameImagesIndex(GlobalSecondaryIndex):
    """Images that default listings show, by name (those named '' are left out):
    the exact `name` filter."""
    class Meta:
        index_name = 'name-images'
        projection = AllProjection()
    listed_name = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class CatalogIndex(GlobalSecondaryIndex):
    """Every image, deleted ones included: admin listings of all tenants."""
    class Meta:
        index_name = 'catalog'
        projection = AllProjection()
    catalog = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ChangesIndex(GlobalSecondaryIndex):
    """Every image by last update: `changes-since` of admins across tenants."""
    class Meta:
        index_name = 'changes'
        projection = AllProjection()
    catalog = UnicodeAttribute(hash_key=True)
    updated_key = UnicodeAttribute(range_key=True)


class AudienceChangesIndex(GlobalSecondaryIndex):
    """Images by last update, deleted and killed ones included, in the partition of
    who sees them without a membership (see `audience`): `changes-since` of a
    tenant. One index, not public + owner ones: CloudFormation adds a single GSI to
    a table per stack update."""
    class Meta:
        index_name = 'audience-changes'
        projection = AllProjection()
    audience = UnicodeAttribute(hash_key=True)
    updated_key = UnicodeAttribute(range_key=True)


class PendingUploadsIndex(GlobalSecondaryIndex):
    """Images holding a presigned-upload reservation, by its expiry (the reaper)."""
    class Meta:
        index_name = 'pending-uploads'
        projection = AllProjection()
    upload_pending = UnicodeAttribute(hash_key=True)
    upload_expires_at = UnicodeAttribute(range_key=True)


class ImageModel(Model):
    class Meta(_Meta):
        table_name = 'glance-images'

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    size = NumberAttribute(null=True)
    virtual_size = NumberAttribute(null=True)
    disk_format = UnicodeAttribute(null=True)
    container_format = UnicodeAttribute(null=True)
    checksum = UnicodeAttribute(null=True)
    min_disk = NumberAttribute(default=0)
    min_ram = NumberAttribute(default=0)
    is_public = BooleanAttribute(default=False)
    protected = BooleanAttribute(default=False)
    owner = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    deleted_at = UnicodeAttribute(null=True)
    deleted = BooleanAttribute(default=False)
    properties: MapAttribute = MapAttribute(default=dict)
    # Never shown (v1 §4): where the bytes are, and their SHA-256.
    location = UnicodeAttribute(null=True)
    sha256 = UnicodeAttribute(null=True)
    cached_location = UnicodeAttribute(null=True)  # bucket copy of an external location
    source_fault = UnicodeAttribute(null=True)  # why that copy was refused (downloads: 502)
    purge_at = NumberAttribute(null=True)   # DynamoDB TTL: when a deleted record may go
    member_count = NumberAttribute(null=True)  # holds the member quota under races
    # A presigned upload in progress: mode, upload_id, size, checksum, expires_at...
    pending_upload: MapAttribute = MapAttribute(null=True)
    # Index keys, derived from the fields above on every write.
    public_listed = UnicodeAttribute(null=True)
    owner_listed = UnicodeAttribute(null=True)
    listed_name = UnicodeAttribute(null=True)
    audience = UnicodeAttribute(null=True)
    catalog = UnicodeAttribute(default=CATALOG_PARTITION)
    created_key = UnicodeAttribute()
    updated_key = UnicodeAttribute()
    upload_pending = UnicodeAttribute(null=True)
    upload_expires_at = UnicodeAttribute(null=True)
    version = VersionAttribute()

    public_images = PublicImagesIndex()
    owner_images = OwnerImagesIndex()
    name_images = NameImagesIndex()
    all_images = CatalogIndex()
    changes = ChangesIndex()
    audience_changes = AudienceChangesIndex()
    pending_uploads = PendingUploadsIndex()


class MemberImagesIndex(GlobalSecondaryIndex):
    """Memberships by member, in the order of their images' creation."""
    class Meta:
        index_name = 'member-images'
        projection = AllProjection()
    member = UnicodeAttribute(hash_key=True)
    image_created_key = UnicodeAttribute(range_key=True)


class ImageMemberModel(Model):
    class Meta(_Meta):
        table_name = 'glance-image-members'

    image_id = UnicodeAttribute(hash_key=True)
    member = UnicodeAttribute(range_key=True)
    can_share = BooleanAttribute(default=False)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    image_created_key = UnicodeAttribute()

    member_images = MemberImagesIndex()


def bind_tables(current):
    """Point both models at the tables of `current` (a Settings); PynamoDB keeps a
    connection per model, so it is dropped when the place changes."""
    for model, table in ((ImageModel, current.images_table),
                         (ImageMemberModel, current.members_table)):
        place = (table, current.region, current.aws_endpoint_url)
        if (model.Meta.table_name, model.Meta.region, model.Meta.host) != place:
            model.Meta.table_name, model.Meta.region, model.Meta.host = place
            model._connection = None
