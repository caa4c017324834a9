"""Version negotiation, as glance.api.middleware.version_negotiation does it.

A request names its version by URL (`/v1`, `/v1.0`, `/v1.1`) or by media type: an
Accept header that starts with `application/vnd.openstack.images-` names the version
after it, and the reference then serves `/v1` + the path as sent. It reads the whole
header as that one media type, so `...images-v1;q=0.9` or a second type names no
version (300, the versions document); `/images` with `...images-v1` is `/v1/images`,
`/v1/images` with it is `/v1/v1/images` (404).
"""
MEDIA_TYPE_PREFIX = 'application/vnd.openstack.images-'
V1_VERSIONS = ('v1', 'v1.0', 'v1.1')
V1_ROOTS = tuple('/' + version for version in V1_VERSIONS)


def media_type_version(accept):
    """The version an Accept header names ('v1', 'v2', ...), or None."""
    accept = (accept or '').strip()
    return accept[len(MEDIA_TYPE_PREFIX):] if accept.startswith(MEDIA_TYPE_PREFIX) else None


def request_path(request):
    """The path as the client sent it, without API Gateway's stage."""
    context = request.context or {}
    path = context.get('path') or request.path
    stage = context.get('stage')
    if stage and path.startswith('/%s/' % stage) and 'domainName' in context:
        path = path[len(stage) + 1:]
    return path


def is_versioned(request):
    """Whether the route matched carries its version in the URL."""
    return request.path.split('/')[1] in V1_VERSIONS


def names_no_v1_version(request):
    """True when the reference answers the versions document (300): an unversioned
    path without a v1 media type, or any path with a media type of no v1 version."""
    version = media_type_version(request.headers.get('accept'))
    if version is not None:
        return version not in V1_VERSIONS
    return not is_versioned(request)


def resource_is_missing(request):
    """The cases the reference's v1 router finds nothing for (404): a v1 media type on
    a versioned path (it looks for /v1/v1/...), and a trailing slash but on a
    version's root (`/v1/` lists images)."""
    if is_versioned(request) and media_type_version(request.headers.get('accept')):
        return True
    path = request_path(request)
    return path.endswith('/') and request.path not in V1_ROOTS + ('/',)
