"""GET /v1/images and /detail: parameters, visibility sets, filters, order (v1 §13).

The default order (created_at, then id) is the order of every catalog source,
so a default page is a lazy merge reading about `limit` items per source.
An exact `name` filter in that order reads the images of that name instead
(all owners: the listing's visibility is applied in memory), so its cost
follows the images bearing the name, not the catalog.
Other orders read the caller's whole visible set; `changes-since` reads the
images of the same sources updated since then, from indexes by update time.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import re
from typing import Iterator

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.errors import Invalid
from chalicelib.domain.ports import DomainSettings, ImageRecord, ImageStore, MemberStore

SORT_KEYS = ('name', 'status', 'container_format', 'disk_format', 'size', 'id',
             'created_at', 'updated_at')
SORT_DIRS = ('asc', 'desc')
OPERATOR_FILTERS = ('name', 'status', 'container_format', 'disk_format')
_NON_NEGATIVE_FILTERS = ('size_min', 'size_max', 'min_ram')
_BOOLEAN_FILTER_VALUES = ('none', 'true', 'false', '1', '0')
PROPERTY_PREFIX = 'property-'
BATCH_GET_MAX = 100   # image records read in one batch


@dataclasses.dataclass
class ListQuery:
    scope: str                       # 'visible' (public + own + shared), 'all', 'non_public'
    limit: int
    sort_key: str = 'created_at'
    descending: bool = True
    marker: str | None = None
    changes_since: str | None = None  # a timestamp in the stored format
    equals: dict = dataclasses.field(default_factory=dict)      # field -> set of values
    properties: dict = dataclasses.field(default_factory=dict)  # name -> value
    size_min: int | None = None
    size_max: int | None = None
    min_ram: int | None = None
    min_disk: str | None = None
    protected: bool | None = None

    @property
    def streams(self) -> bool:
        """True when catalog order is the requested order."""
        return self.sort_key == 'created_at' and self.changes_since is None


def parse_list_params(context: RequestContext, params: dict[str, str],
                      current: DomainSettings) -> ListQuery:
    """Validate query parameters in the reference's order; returns a ListQuery."""
    _check_filter_values(params)
    query = ListQuery(scope=_scope(context, params.get('is_public')),
                      limit=_limit(params.get('limit'), current))
    if 'marker' in params:
        if not im.is_uuid_like(params['marker']):
            raise Invalid('Invalid marker format')
        query.marker = params['marker']
    query.sort_key, query.descending = _order(params)
    if 'changes-since' in params:
        since = im.parse_isotime(params['changes-since'])
        if since is None:
            raise Invalid('Unrecognized changes-since value')
        query.changes_since = im.format_time(since)
    if 'protected' in params:
        value = params['protected'].lower()
        if value == 'none':
            raise Invalid('protected must be True, or False')
        query.protected = value in ('true', '1')
    for name in OPERATOR_FILTERS:
        if name in params:
            query.equals[name] = _operator_values(params[name])
    for name in _NON_NEGATIVE_FILTERS:
        if name in params:
            setattr(query, name, int(params[name]))
    query.min_disk = params.get('min_disk')
    query.properties = {key[len(PROPERTY_PREFIX):]: value for key, value in params.items()
                        if key.startswith(PROPERTY_PREFIX)}
    return query


def _check_filter_values(params):
    for name in _NON_NEGATIVE_FILTERS:
        if name in params and not _is_non_negative_int(params[name]):
            raise Invalid('Bad value passed to filter %s got %s' % (name, params[name]))
    for name in ('is_public', 'protected'):
        if name in params and params[name].lower() not in _BOOLEAN_FILTER_VALUES:
            raise Invalid('Bad value passed to filter %s got %s' % (name, params[name]))


def _order(params):
    """(sort_key, descending) of a listing."""
    sort_key = params.get('sort_key', 'created_at')
    if sort_key not in SORT_KEYS:
        raise Invalid('Unsupported sort_key. Acceptable values: %s' % ', '.join(SORT_KEYS))
    sort_dir = params.get('sort_dir', 'desc')
    if sort_dir not in SORT_DIRS:
        raise Invalid('Unsupported sort_dir. Acceptable values: %s' % ', '.join(SORT_DIRS))
    return sort_key, sort_dir == 'desc'


def _is_non_negative_int(value):
    try:
        return int(value) >= 0
    except ValueError:
        return False


def _scope(context, is_public):
    """Whose images are candidates (v1 §13.1): `is_public` only matters to admins."""
    if not context.is_admin or is_public is None:
        return 'visible'
    value = is_public.lower()
    if value == 'none':
        return 'all'
    if value in ('false', '0'):
        return 'non_public'
    return 'visible'


def _limit(value, current):
    limit = current.limit_param_default
    if value is not None:
        try:
            limit = int(value)
        except ValueError:
            raise Invalid('limit param must be an integer') from None
        if limit < 0:
            raise Invalid('limit param must be positive')
    return min(limit, current.api_limit_max)


def _operator_values(value):
    """`in:a,b` -> {a, b}; `eq:x` -> {x}; a plain value (or a time) -> {value}."""
    if ':' not in value or im.parse_isotime(value) is not None:
        return {value}
    operator, operand = value.split(':', 1)
    if operator == 'in':
        return _in_values(operand)
    if operator == 'eq':
        return {operand}
    raise Invalid("Unable to filter by unknown operator '%s'." % operator)


# glance.common.utils.split_filter_value_for_quotes: quoted values (backslash escapes
# kept as sent), runs of non-commas, or a lone comma for an empty value.
_IN_VALUE = re.compile(r'''
    "([^"\\]*(?:\\.[^"\\]*)*)",?
    | ([^,]+),?
    | ,
    ''', re.VERBOSE)


def _in_values(operand):
    """The values of an `in:` filter, split and checked as the reference does."""
    _check_quotes(operand)
    return {quoted or plain for quoted, plain in _IN_VALUE.findall(operand)}


def _check_quotes(operand):
    """glance.common.utils.validate_quotes: quotes open after a comma, close before one."""
    open_quote = True
    for index, char in enumerate(operand):
        if char != '"' or (index and operand[index - 1] == '\\'):
            continue
        if open_quote and index and operand[index - 1] != ',':
            raise Invalid('Invalid filter value %s. There is no comma before opening '
                             'quotation mark.' % operand)
        if not open_quote and index + 1 != len(operand) and operand[index + 1] != ',':
            raise Invalid('Invalid filter value %s. There is no comma after closing '
                             'quotation mark.' % operand)
        open_quote = not open_quote
    if not open_quote:
        raise Invalid('Invalid filter value %s. The quote is not closed.' % operand)


def matches(image: ImageRecord, query: ListQuery) -> bool:
    """The filters of v1 §13.2 and the default exclusions of §13.1."""
    if query.changes_since is None and not im.is_listed_by_default(image):
        return False
    if query.changes_since is not None and not image['updated_at'] > query.changes_since:
        return False
    if query.scope == 'non_public' and image['is_public']:
        return False
    for field, values in query.equals.items():
        if im.field_of(image, field) not in values:
            return False
    size = image['size']
    if query.size_min is not None and (size is None or size < query.size_min):
        return False
    if query.size_max is not None and (size is None or size > query.size_max):
        return False
    if query.min_ram is not None and image['min_ram'] != query.min_ram:
        return False
    if query.min_disk is not None and str(image['min_disk']) != query.min_disk.strip():
        return False
    if query.protected is not None and image['protected'] != query.protected:
        return False
    for name, value in query.properties.items():
        if image['properties'].get(name) != value:
            return False
    return True


def sort_tuple(image: ImageRecord, sort_key: str) -> tuple:
    """Nulls first in ascending order; tie-breakers created_at, then id."""
    values = (im.field_of(image, key) for key in (sort_key, 'created_at', 'id'))
    return tuple((0, '') if value is None else (1, value) for value in values)


@dataclasses.dataclass(frozen=True)
class IndexedImages:
    """A listing source the image catalog holds in one index: ('public',),
    ('owner', tenant), ('name', name) or ('all',)."""
    key: tuple

    def stream(self, images: ImageStore, members: MemberStore, descending: bool,
               after: str | None = None, page_size: int | None = None) -> Iterator[ImageRecord]:
        return images.images_of(self.key, descending, after, page_size)

    def changed(self, images: ImageStore, members: MemberStore,
                since: str) -> Iterator[ImageRecord]:
        return images.changed_since(self.key, since)

    def admits(self, context: RequestContext, image: ImageRecord) -> bool:
        return True


@dataclasses.dataclass(frozen=True)
class SharedImages:
    """The images shared with a tenant: its memberships in the order of their images'
    creation, then those images' records, a batch at a time."""
    tenant: str

    def stream(self, images: ImageStore, members: MemberStore, descending: bool,
               after: str | None = None, page_size: int | None = None) -> Iterator[ImageRecord]:
        memberships = members.of_member(self.tenant, descending, after, page_size)
        batch = min(page_size or BATCH_GET_MAX, BATCH_GET_MAX)
        while True:
            chunk = [m['image_id'] for m in itertools.islice(memberships, batch)]
            if not chunk:
                return
            found = images.get_many(chunk)
            yield from (found[image_id] for image_id in chunk if image_id in found)

    def changed(self, images: ImageStore, members: MemberStore,
                since: str) -> Iterator[ImageRecord]:
        return (image for image in self.stream(images, members, True)
                if image['updated_at'] > since)

    def admits(self, context: RequestContext, image: ImageRecord) -> bool:
        """Images made public or owned are listed by their own source; a deleted image
        has no members (rows a failed delete left over do not count)."""
        return (not image['is_public'] and image['owner'] != context.tenant
                and not image['deleted'])


def sources(context: RequestContext, query: ListQuery) -> list[IndexedImages | SharedImages]:
    """The sources whose union is the candidate set."""
    if query.scope != 'visible':
        return [IndexedImages(('all',))]
    found: list[IndexedImages | SharedImages] = [IndexedImages(('public',))]
    if context.tenant is not None:
        found += [IndexedImages(('owner', context.tenant)), SharedImages(context.tenant)]
    return found


def _candidates(images, context, source):
    return (image for image in images if source.admits(context, image))


def _listable(context, image, shared):
    """Scope 'visible' (v1 §13.1): public, the caller's tenant's own, or shared with
    that tenant (`shared`: ids of images it is a member of). The union of the
    sources, as one test; unlike `can_see`, it lists no owner-less private image and
    holds for admins too."""
    return image['is_public'] or (context.tenant is not None and (
        image['owner'] == context.tenant or image['id'] in shared))


def select_page(images: ImageStore, members: MemberStore, context: RequestContext,
                query: ListQuery, marker_image: ImageRecord | None) -> list[ImageRecord]:
    """The page of images: a lazy merge, or a sort of the visible set."""
    if query.limit == 0:
        return []
    if query.streams:
        names = _indexed_names(images, query)
        if names is not None:
            return _named_page(images, members, context, query, marker_image, names)
        return _merged_page(images, members, context, query, marker_image)
    return _sorted_page(images, members, context, query, marker_image)


def _indexed_names(images, query):
    """The values of an exact `name` filter if the catalog's name index holds every
    listed image bearing them (not '': unnamed images are not indexed), else None."""
    names = query.equals.get('name')
    if names is None or not all(images.indexes_name(name) for name in names):
        return None
    return names


def _named_page(images, members, context, query, marker_image, names):
    """A lazy merge of the listed images of each name (every owner's), in chunks of
    `limit`: the other filters, then the listing's visibility (one membership
    BatchGetItem a chunk for images neither public nor the caller's)."""
    after = None if marker_image is None else im.created_key(marker_image)
    streams = [IndexedImages(('name', name)).stream(images, members, query.descending, after,
                                                    query.limit + 1)
               for name in sorted(names)]
    merged = heapq.merge(*streams, key=im.created_key, reverse=query.descending)
    wanted = (image for image in merged if matches(image, query))
    page: list = []
    seen: set = set()
    while len(page) < query.limit:
        chunk = []
        for image in wanted:
            if image['id'] not in seen:
                seen.add(image['id'])
                chunk.append(image)
                if len(chunk) == query.limit:
                    break
        if not chunk:
            break
        page += _visible_among(members, context, query, chunk)
    return page[:query.limit]


def _visible_among(members, context, query, found):
    """Those of `found` (already through `matches`) in the query's scope."""
    if query.scope != 'visible':
        return found  # 'all', and 'non_public' (which `matches` applied)
    undecided = [image['id'] for image in found
                 if context.tenant is not None and not _listable(context, image, ())]
    shared = members.among(undecided, context.tenant) if undecided else set()
    return [image for image in found if _listable(context, image, shared)]


def _merged_page(images, members, context, query, marker_image):
    after = None if marker_image is None else im.created_key(marker_image)
    streams = [_candidates(source.stream(images, members, query.descending, after,
                                         query.limit + 1), context, source)
               for source in sources(context, query)]
    page, seen = [], set()
    for image in heapq.merge(*streams, key=im.created_key, reverse=query.descending):
        if image['id'] in seen or not matches(image, query):
            continue
        seen.add(image['id'])
        page.append(image)
        if len(page) == query.limit:
            break
    return page


def _sorted_page(images, members, context, query, marker_image):
    """The caller's whole candidate set, sorted; with `changes-since` only the images
    of its sources updated since then (never other tenants' private ones, but for
    admins listing all tenants)."""
    candidates = {}
    for source in sources(context, query):
        if query.changes_since is None:
            found = source.stream(images, members, query.descending)
        else:
            found = source.changed(images, members, query.changes_since)
        for image in _candidates(found, context, source):
            candidates[image['id']] = image
    selected = [image for image in candidates.values() if matches(image, query)]
    selected.sort(key=lambda image: sort_tuple(image, query.sort_key),
                  reverse=query.descending)
    if marker_image is not None:
        bound = sort_tuple(marker_image, query.sort_key)
        selected = [image for image in selected
                    if (sort_tuple(image, query.sort_key) < bound) == query.descending
                    and sort_tuple(image, query.sort_key) != bound]
    return selected[:query.limit]
