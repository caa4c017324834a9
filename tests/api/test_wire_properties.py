"""Properties of the v1 header codec (chalicelib/api/wire.py), v1 §4.2, §5, §18.

Hypothesis, derandomized and bounded: the same examples on every run.

- An image rendered as `x-image-meta-*` headers parses back to its non-null fields and
  properties, whatever the case of the header names and `-` or `_` in field names;
  names and values may be any unicode, long, with inner or surrounding whitespace.
- Any set of headers either parses (then the request validation runs) or is refused
  with a 4xx DomainError; never another exception. The same for listing parameters.
- Booleans are lenient (`1, t, true, on, y, yes`, any case, surrounding whitespace);
  integers are base-10, not negative, within the stored range.
- Error bodies render for any Accept header and method.
"""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.api.errors import HttpError, http_error
from chalicelib import config
from chalicelib.api import wire
from chalicelib.domain import context as ctx
from chalicelib.domain import errors
from chalicelib.domain import image_meta as im
from chalicelib.domain.listing import parse_list_params

PROPERTIES = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])
TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')
INT64_MAX = 2 ** 63 - 1

# -- strategies --------------------------------------------------------------------------
# Any text a header can carry once the transport decoded it (no surrogates), without
# the control characters metadata refuses (C0 but TAB, DEL); whitespace inside and
# around is kept by the codec.
header_text = st.text(st.characters(
    blacklist_categories=('Cs',),
    blacklist_characters=''.join(map(chr, range(0x20))).replace('\t', '') + '\x7f'),
    max_size=300)
non_empty_text = header_text.filter(lambda text: text != '')
timestamps = st.datetimes().map(im.format_time)
# Header names are HTTP tokens (RFC 9110); a stored property name is what parsing made
# of one: lower case, no '-'.
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
property_names = st.text(TOKEN.lower().replace('-', ''), min_size=1, max_size=60)


def nullable(strategy):
    return st.one_of(st.none(), strategy)


images = st.fixed_dictionaries({
    'id': st.uuids().map(str),
    'name': nullable(non_empty_text),
    'status': st.sampled_from(('queued', 'saving', 'active', 'killed', 'deleted',
                               'pending_delete', 'deactivated')),
    'size': nullable(st.integers(0, 2 ** 40)),
    'virtual_size': nullable(st.integers(0, INT64_MAX)),
    'disk_format': nullable(st.sampled_from(('raw', 'qcow2', 'ami', 'iso'))),
    'container_format': nullable(st.sampled_from(('bare', 'ovf', 'ami'))),
    'checksum': nullable(st.text('0123456789abcdef', min_size=32, max_size=32)),
    'min_disk': st.integers(0, im.INT32_MAX),
    'min_ram': st.integers(0, im.INT32_MAX),
    'is_public': st.booleans(),
    'protected': st.booleans(),
    'owner': nullable(non_empty_text),
    'created_at': timestamps,
    'updated_at': timestamps,
    'deleted_at': nullable(timestamps),
    'deleted': st.booleans(),
    'properties': st.dictionaries(property_names, nullable(non_empty_text), max_size=8),
})


def _recase(draw, name):
    """The same header name in any letter case."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return ''.join(c.upper() if flip else c.lower() for c, flip in zip(name, flips))


def _respell(draw, name):
    """`-` or `_` between the words of a field name (not of a property name)."""
    if name.startswith(wire.PROPERTY_PREFIX) or not name.startswith(wire.META_PREFIX):
        return name
    field = name[len(wire.META_PREFIX):]
    if draw(st.booleans()):
        field = field.replace('_', '-')
    return wire.META_PREFIX + field


# -- image -> headers -> image ---------------------------------------------------------
@PROPERTIES
@given(image=images, data=st.data())
def test_an_image_rendered_as_headers_parses_back(image, data):
    headers = wire.image_meta_to_headers(image)
    assert all(isinstance(value, str) for value in headers.values())
    sent = {_recase(data.draw, _respell(data.draw, name)): value
            for name, value in headers.items()}

    parsed = wire.image_meta_from_headers(sent)

    expected = {field: image[field] for field in im.IMAGE_FIELDS
                if field != 'properties' and image[field] is not None}
    properties = {name: value for name, value in image['properties'].items()
                  if value is not None}
    if properties:
        expected['properties'] = properties
    assert parsed == expected
    if image['checksum']:
        assert headers['ETag'] == image['checksum']


@PROPERTIES
@given(image=images)
def test_null_fields_and_properties_are_omitted_and_booleans_capitalised(image):
    headers = wire.image_meta_to_headers(image)
    for field in im.IMAGE_FIELDS:
        if field == 'properties':
            continue
        name = wire.META_PREFIX + field
        assert (name in headers) == (image[field] is not None)
    for field in im.BOOLEAN_FIELDS:
        assert headers[wire.META_PREFIX + field] == ('True' if image[field] else 'False')
    rendered = {name[len(wire.PROPERTY_PREFIX):] for name in headers
                if name.startswith(wire.PROPERTY_PREFIX)}
    assert rendered == {name for name, value in image['properties'].items()
                        if value is not None}


@PROPERTIES
@given(names=st.dictionaries(st.text(TOKEN, min_size=1, max_size=40), non_empty_text,
                             max_size=6))
def test_property_names_are_lower_cased_with_dashes_as_underscores(names):
    headers = {wire.PROPERTY_PREFIX + name: value for name, value in names.items()}
    parsed = wire.image_meta_from_headers(headers).get('properties', {})
    expected = {}
    for name, value in names.items():  # later headers win, as a dict of headers does
        expected[name.lower().replace('-', '_')] = value
    assert parsed == expected


@PROPERTIES
@given(field=st.sampled_from(sorted(im.ACCEPTED_META_FIELDS)), data=st.data())
def test_an_empty_value_is_null(field, data):
    name = _recase(data.draw, wire.META_PREFIX + field)
    parsed = wire.image_meta_from_headers({name: ''})
    assert parsed == {field: False if field in im.BOOLEAN_FIELDS else None}
    assert wire.image_meta_from_headers({wire.PROPERTY_PREFIX + 'k': ''}) == {
        'properties': {'k': None}}


# -- any headers: parsed, or a 4xx --------------------------------------------------------
header_names = st.one_of(
    header_text,
    st.builds(lambda suffix: wire.META_PREFIX + suffix, header_text),
    st.builds(lambda suffix: wire.PROPERTY_PREFIX + suffix, header_text),
    st.sampled_from(sorted(im.ACCEPTED_META_FIELDS)).map(lambda f: wire.META_PREFIX + f))
header_values = st.one_of(
    header_text,
    st.integers(-2 ** 70, 2 ** 70).map(str),
    st.sampled_from(('None', 'True', 'false', ' 1 ', '+5', '0x10', '1e3', '1_000', '٣',
                     'raw', 'ami', 's3', '2012-01-01T00:00:00', '-42', '1100')))


def _parsed_or_4xx(function, *args):
    try:
        return function(*args)
    except errors.DomainError as error:
        assert 400 <= http_error(error).code < 500, (type(error), error.message)
        assert error.message
        return None


@PROPERTIES
@given(headers=st.dictionaries(header_names, header_values, max_size=12))
def test_any_headers_parse_or_are_refused_with_a_4xx(headers):
    meta = _parsed_or_4xx(wire.image_meta_from_headers, headers)
    if meta is None:
        return
    for field, value in meta.items():
        if field == 'properties':
            assert value and all(name for name in value)  # a map key names something
            assert all(isinstance(v, (str, type(None))) for v in value.values())
        elif field in im.BOOLEAN_FIELDS:
            assert isinstance(value, bool)
        elif field in im.INTEGER_FIELDS:
            assert value is None or (isinstance(value, int) and value >= 0)
        else:
            assert field in im.ACCEPTED_META_FIELDS
            assert value is None or isinstance(value, str)
    # then the request's own validation (v1 §5): values the records can hold, or 400
    validated = _parsed_or_4xx(im.validate_image_meta, meta, config.settings())
    if validated is not None:
        for field in im.INT32_FIELDS:
            assert (validated.get(field) or 0) <= im.INT32_MAX
        assert (validated.get('size') or 0) <= INT64_MAX
        assert (validated.get('virtual_size') or 0) <= INT64_MAX
        assert len(validated.get('name') or '') <= 255
        assert len(validated.get('checksum') or '') <= 32


# -- booleans and integers ------------------------------------------------------------------
whitespace = st.text(' \t', max_size=3)


@PROPERTIES
@given(word=st.sampled_from(TRUE_STRINGS), before=whitespace, after=whitespace,
       data=st.data())
def test_true_strings_in_any_case_are_true(word, before, after, data):
    assert wire.parse_bool(before + _recase(data.draw, word) + after) is True


@PROPERTIES
@given(value=header_text)
def test_every_other_string_is_false(value):
    assert wire.parse_bool(value) is (value.strip().lower() in TRUE_STRINGS)
    field = wire.META_PREFIX + 'protected'
    assert wire.image_meta_from_headers({field: value}) == {
        'protected': value.strip().lower() in TRUE_STRINGS}


@PROPERTIES
@given(field=st.sampled_from(im.INTEGER_FIELDS), number=st.integers(0, 2 ** 80),
       before=whitespace, after=whitespace, zeros=st.text('0', max_size=3),
       plus=st.booleans())
def test_non_negative_integers_parse_whatever_their_spelling(field, number, before, after,
                                                              zeros, plus):
    text = '%s%s%s%d%s' % (before, '+' if plus else '', zeros, number, after)
    assert wire.image_meta_from_headers({wire.META_PREFIX + field: text}) == {field: number}


@PROPERTIES
@given(field=st.sampled_from(im.INTEGER_FIELDS), number=st.integers(max_value=-1))
def test_negative_integers_are_400(field, number):
    with pytest.raises(errors.Invalid) as refused:
        wire.image_meta_from_headers({wire.META_PREFIX + field: str(number)})
    assert refused.value.message == (
        "Invalid value '%d' for parameter '%s': Cannot be a negative value." % (number, field))


def _not_an_int(text):
    try:
        int(text)
    except ValueError:
        return True
    return False


@PROPERTIES
@given(field=st.sampled_from(im.INTEGER_FIELDS), value=non_empty_text.filter(_not_an_int))
def test_other_integer_values_are_400(field, value):
    if field == 'virtual_size' and value == 'None':
        assert wire.image_meta_from_headers({wire.META_PREFIX + field: value}) == {
            field: None}
        return
    with pytest.raises(errors.Invalid) as refused:
        wire.image_meta_from_headers({wire.META_PREFIX + field: value})
    assert refused.value.message == (
        "Invalid value '%s' for parameter '%s': Cannot convert image %s '%s' to an "
        "integer." % (value, field, field, value))


@PROPERTIES
@given(field=st.sampled_from(('min_disk', 'min_ram', 'size', 'virtual_size')),
       excess=st.integers(1, 10 ** 60))
def test_integers_beyond_what_a_record_holds_are_400(field, excess):
    """min_disk, min_ram: 32 bits (v1 §5); size, virtual_size: the reference's
    BigInteger (DynamoDB numbers hold 38 digits: more would be a failed write, not a
    400). A size that large is beyond any size cap (v1 §8)."""
    limit = im.INT32_MAX if field in im.INT32_FIELDS else INT64_MAX
    meta = wire.image_meta_from_headers({wire.META_PREFIX + field: str(limit + excess)})
    with pytest.raises(errors.Invalid) as refused:
        im.validate_image_meta(meta, config.settings())
    if field == 'size':
        assert refused.value.message == 'Denying attempt to upload image larger than ' \
            '%d bytes.' % config.settings().image_size_cap
    else:
        assert "'%s' value out of range, must not exceed %d." % (field, limit) \
            in refused.value.message
    assert im.validate_image_meta({field: limit}, config.settings()) == {field: limit}


# -- listing parameters -----------------------------------------------------------------------
list_names = st.one_of(
    st.sampled_from(('name', 'status', 'container_format', 'disk_format', 'size_min',
                     'size_max', 'min_ram', 'min_disk', 'protected', 'is_public',
                     'changes-since', 'sort_key', 'sort_dir', 'limit', 'marker',
                     'deleted')),
    st.builds(lambda key: 'property-' + key, header_text), header_text)
# A query string can carry any character, line breaks and NUL included.
query_text = st.text(st.characters(blacklist_categories=('Cs',)), max_size=100)
list_values = st.one_of(
    query_text, st.builds(lambda op, text: op + text, st.sampled_from(('in:', 'eq:')),
                          query_text),
    st.integers(-10, 10 ** 30).map(str),
    st.sampled_from(('in:a,b', 'eq:x', 'gt:1', 'in:"a,b",c', 'None', 'TRUE', 'none',
                     '2013-01-01', '20130101', '2013-01-01T00:00:00+01:00', 'desc',
                     'name', str(__import__('uuid').UUID(int=7)), '{%s}' % ('0' * 32),
                     'in:a\nb', 'in:"a', 'in:a"b', 'in:"a"b', 'in:\\"a"', 'in:,,')))


operator_values = st.one_of(
    st.builds(lambda op, text: op + text, st.sampled_from(('in:', 'eq:', 'in:"', 'x:', '')),
              query_text),
    st.lists(st.one_of(query_text, query_text.map(lambda text: '"%s"' % text)),
             max_size=4).map(lambda values: 'in:' + ','.join(values)))


@PROPERTIES
@given(params=st.dictionaries(list_names, list_values, max_size=8),
       filters=st.dictionaries(st.sampled_from(('name', 'status', 'container_format',
                                                'disk_format')), operator_values),
       admin=st.booleans(), tenant=nullable(st.sampled_from(('t1', 't2'))))
def test_any_listing_parameters_parse_or_are_refused_with_a_4xx(params, filters, admin,
                                                                 tenant):
    params = dict(params, **filters)
    context = ctx.from_identity(tenant, None, ['admin' if admin else 'member'])
    query = _parsed_or_4xx(parse_list_params, context, params, config.settings())
    if query is not None:
        assert 0 <= query.limit <= config.settings().api_limit_max
        assert query.sort_key in ('name', 'status', 'container_format', 'disk_format',
                                  'size', 'id', 'created_at', 'updated_at')


# -- error bodies ------------------------------------------------------------------------------
error_classes = st.sampled_from([errors.Invalid, errors.NotAuthenticated,
                                 errors.Forbidden, errors.NotFound, errors.Conflict,
                                 errors.Changed, errors.TooLarge, errors.SourceFailed,
                                 lambda message: HttpError(431, message),
                                 lambda message: HttpError(500, message),
                                 errors.Unavailable])
accepts = st.one_of(
    header_text,
    st.lists(st.builds(lambda mask, q: mask + (';q=' + q if q is not None else ''),
                       st.sampled_from(('text/html', 'application/json', '*/*', 'text/*',
                                        'application/*', 'text/plain', '')),
                       nullable(st.sampled_from(('0', '1', '0.5', 'abc', 'nan', 'inf',
                                                 '-1', ''))))).map(', '.join))


@PROPERTIES
@given(error_class=error_classes, message=header_text, accept=nullable(accepts),
       method=st.sampled_from(('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH')))
def test_errors_render_for_any_accept_header(error_class, message, accept, method):
    error = error_class(message)
    expected = http_error(error)
    response = wire.error_response(error, accept, method)
    assert response.status_code == expected.code
    content_type = response.headers['Content-Type']
    body = response.body
    if method == 'HEAD':
        assert body == ''
    elif content_type == 'application/json':
        document = json.loads(body)
        assert document['message'].startswith(message)
        assert document['code'] == '%d %s' % (expected.code, expected.title)
    elif content_type.startswith('text/html'):
        assert __import__('html').escape(message) in body
    else:
        assert content_type == 'text/plain; charset=UTF-8'
        assert body.startswith('%d %s\n\n%s' % (expected.code, expected.title, message))


# -- what the properties found, pinned ---------------------------------------------------
def test_a_nameless_property_is_a_bad_header():
    """The reference stores a property named ''; here such an image could no longer be
    read back (moto drops the empty map key), and listings failed with 500."""
    with pytest.raises(errors.Invalid) as refused:
        wire.image_meta_from_headers({'X-Image-Meta-Property-': 'v'})
    assert refused.value.message == 'Bad header: x-image-meta-property-'


@pytest.mark.parametrize('operand,values', [
    ('a,b', {'a', 'b'}), ('a, b', {'a', ' b'}), ('"a","b"', {'a', 'b'}),
    ('"a,b",c', {'a,b', 'c'}), ('"a\\"b",c', {'a\\"b', 'c'}), (',,', {''}),
    ('x\ny', {'x\ny'}), ('', set())])
def test_in_filters_split_as_the_reference_does(operand, values):
    """glance.common.utils.split_filter_value_for_quotes; a line break was a 500 (csv)."""
    context = ctx.from_identity('t1', None, ['member'])
    query = parse_list_params(context, {'name': 'in:' + operand}, config.settings())
    assert query.equals['name'] == values


@pytest.mark.parametrize('operand,problem', [
    ('a"b"', 'There is no comma before opening quotation mark.'),
    ('"a"b', 'There is no comma after closing quotation mark.'),
    ('"a', 'The quote is not closed.')])
def test_badly_quoted_in_filters_are_400(operand, problem):
    """The reference answers these with 500 (its validate_quotes error is not caught)."""
    context = ctx.from_identity('t1', None, ['member'])
    with pytest.raises(errors.Invalid) as refused:
        parse_list_params(context, {'status': 'in:' + operand}, config.settings())
    assert refused.value.message == 'Invalid filter value %s. %s' % (operand, problem)
