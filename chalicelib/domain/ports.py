"""What the domain expects of storage: the failures adapters report."""


class ImageExists(Exception):
    """An image with that id exists (or existed: ids are never reused)."""


class ImageMissing(Exception):
    pass


class CatalogUnavailable(Exception):
    """The catalog (DynamoDB) refused or could not be reached: throttled, erring,
    unreachable. A write that failed so may still have been applied (a lost answer)."""


class ConcurrentUpdate(Exception):
    """The item kept changing under us; gave up rather than overwrite."""


class BlobTooLarge(Exception):
    """The stream went past the number of bytes it was allowed (args[0]: bytes seen)."""


class BlobMissing(Exception):
    pass


class BlobStoreError(Exception):
    """The object store refused or could not be reached."""


class SourceNotFound(Exception):
    """An external source (location or copy-from URL) is missing or unreachable."""


class SourceUnavailable(Exception):
    """An external source answered with an error, or too late, or too slowly."""


class SourceRefused(Exception):
    """An external source the service must not read (its own bucket, an address on
    its network, a port or bucket not allowed): args[0] says why."""
