"""Unit tests of the v1 wire codec (chalicelib/api/wire.py): v1 §4.2, §5, §18."""
import json

import pytest

from chalicelib.api import wire
from chalicelib.domain import image_meta as im
from chalicelib.api.errors import http_error, method_not_allowed
from chalicelib.domain.errors import Invalid, NotFound


def parse(**headers):
    return wire.image_meta_from_headers(headers)


def parse_raw(headers):
    return wire.image_meta_from_headers(headers)


def bad_request(headers):
    with pytest.raises(Invalid) as caught:
        wire.image_meta_from_headers(headers)
    assert http_error(caught.value).code == 400
    return caught.value.message


# -- image_meta_from_headers: names ------------------------------------------------
def test_only_present_fields_are_returned():
    assert parse_raw({'x-image-meta-name': 'cirros'}) == {'name': 'cirros'}
    assert parse_raw({}) == {}


def test_headers_without_the_prefix_are_ignored():
    meta = parse_raw({'X-Image-Disk-Format': 'raw', 'Content-Type': 'text/plain',
                      'X-Tenant-Id': 't', 'x-glance-registry-purge-props': 'false',
                      'x-glance-api-copy-from': 'http://example.com/x'})
    assert meta == {}


def test_property_names_are_lower_cased_and_dashes_become_underscores():
    meta = parse_raw({'X-Image-Meta-Property-Foo-Bar': 'one',
                      'x-image-meta-property-CamelCase': 'two',
                      'X-IMAGE-META-PROPERTY-os_distro': 'cirros'})
    assert meta == {'properties': {'foo_bar': 'one', 'camelcase': 'two',
                                   'os_distro': 'cirros'}}


def test_property_values_are_kept_verbatim():
    meta = parse_raw({'x-image-meta-property-k': ' Mixed Case value '})
    assert meta['properties'] == {'k': ' Mixed Case value '}


def test_field_suffix_is_normalised():
    meta = parse_raw({'X-Image-Meta-Disk-Format': 'raw',
                      'x-image-meta-container_format': 'bare',
                      'X-IMAGE-META-MIN-RAM': '5', 'x-image-meta-Min_Disk': '7',
                      'x-image-meta-Is-Public': 'true', 'x-image-meta-virtual-size': '9'})
    assert meta == {'disk_format': 'raw', 'container_format': 'bare', 'min_ram': 5,
                    'min_disk': 7, 'is_public': True, 'virtual_size': 9}


@pytest.mark.parametrize('field', sorted(im.ACCEPTED_META_FIELDS))
def test_every_accepted_field_is_accepted(field):
    value = '1' if field in im.INTEGER_FIELDS else 'x'
    meta = parse_raw({'x-image-meta-' + field: value})
    assert list(meta) == [field]


def test_the_accepted_field_set_is_the_references():
    assert im.ACCEPTED_META_FIELDS == {
        'location', 'size', 'is_public', 'disk_format', 'container_format', 'name',
        'status', 'copy_from', 'uri', 'checksum', 'created_at', 'updated_at',
        'deleted_at', 'min_ram', 'min_disk', 'owner', 'store', 'id', 'protected',
        'deleted', 'virtual_size'}


def test_unknown_field_header_is_bad_request():
    assert bad_request({'x-image-meta-foo': 'bar'}) == 'Bad header: x-image-meta-foo'


def test_bad_header_message_names_the_lower_cased_header():
    message = bad_request({'X-Image-Meta-Foo-Bar': '1'})
    assert message == 'Bad header: x-image-meta-foo-bar'


@pytest.mark.parametrize('header', ['x-image-meta-properties', 'x-image-meta-tags',
                                    'x-image-meta-visibility', 'x-image-meta-sha256'])
def test_other_non_fields_are_bad_headers(header):
    assert bad_request({header: 'x'}) == 'Bad header: %s' % header


# -- empty values ---------------------------------------------------------------
@pytest.mark.parametrize('field', ['name', 'disk_format', 'container_format', 'owner',
                                   'checksum', 'location', 'store', 'id', 'status'])
def test_empty_value_means_null(field):
    assert parse_raw({'x-image-meta-' + field: ''}) == {field: None}


@pytest.mark.parametrize('field', ['size', 'min_disk', 'min_ram', 'virtual_size'])
def test_empty_integer_means_null(field):
    assert parse_raw({'x-image-meta-' + field: ''}) == {field: None}


def test_empty_property_means_null():
    assert parse_raw({'x-image-meta-property-gone': ''}) == {'properties': {'gone': None}}


# -- integers ---------------------------------------------------------------------
@pytest.mark.parametrize('field', ['size', 'min_disk', 'min_ram', 'virtual_size'])
def test_integers_are_parsed(field):
    assert parse_raw({'x-image-meta-' + field: '1024'}) == {field: 1024}
    assert parse_raw({'x-image-meta-' + field: '0'}) == {field: 0}


def test_large_sizes_are_parsed_exactly():
    assert parse_raw({'x-image-meta-size': '1099511627777'}) == {'size': 1099511627777}


@pytest.mark.parametrize('field', ['size', 'min_disk', 'min_ram', 'virtual_size'])
@pytest.mark.parametrize('value', ['abc', '1.5', '0x10', '12abc'])
def test_non_integer_is_bad_request(field, value):
    assert bad_request({'x-image-meta-' + field: value}) == (
        "Invalid value '%s' for parameter '%s': Cannot convert image %s '%s' to an "
        "integer." % (value, field, field, value))


@pytest.mark.parametrize('field', ['size', 'min_disk', 'min_ram', 'virtual_size'])
def test_negative_integer_is_bad_request(field):
    assert bad_request({'x-image-meta-' + field: '-1'}) == (
        "Invalid value '-1' for parameter '%s': Cannot be a negative value." % field)


def test_virtual_size_accepts_literal_none():
    assert parse_raw({'x-image-meta-virtual_size': 'None'}) == {'virtual_size': None}


@pytest.mark.parametrize('field', ['size', 'min_disk', 'min_ram'])
def test_only_virtual_size_accepts_literal_none(field):
    assert bad_request({'x-image-meta-' + field: 'None'}) == (
        "Invalid value 'None' for parameter '%s': Cannot convert image %s 'None' to an "
        "integer." % (field, field))


# -- booleans ---------------------------------------------------------------------
TRUE_VALUES = ['1', 't', 'true', 'on', 'y', 'yes', 'TRUE', 'True', 'On', 'YES', 'T', 'Y']
FALSE_VALUES = ['0', 'f', 'false', 'off', 'n', 'no', 'None', 'banana', '', '2', 'False']


@pytest.mark.parametrize('field', ['is_public', 'protected', 'deleted'])
@pytest.mark.parametrize('value', TRUE_VALUES)
def test_lenient_boolean_true(field, value):
    assert parse_raw({'x-image-meta-' + field: value}) == {field: True}


@pytest.mark.parametrize('field', ['is_public', 'protected', 'deleted'])
@pytest.mark.parametrize('value', FALSE_VALUES)
def test_lenient_boolean_anything_else_is_false(field, value):
    assert parse_raw({'x-image-meta-' + field: value}) == {field: False}


def test_parse_bool():
    assert wire.parse_bool('yes') is True
    assert wire.parse_bool(' True ') is True
    assert wire.parse_bool('no') is False
    assert wire.parse_bool(None) is False


def test_all_together():
    meta = parse_raw({'x-image-meta-name': 'n', 'x-image-meta-size': '3',
                      'x-image-meta-is_public': 'None', 'x-image-meta-property-a': 'b',
                      'Accept': 'application/json'})
    assert meta == {'name': 'n', 'size': 3, 'is_public': False,
                    'properties': {'a': 'b'}}


# -- image_meta_to_headers ----------------------------------------------------------
def _image(**changes):
    image = {
        'id': '71c675ab-d94f-49cd-a114-e12490b328d9', 'name': 'cirros',
        'status': 'active', 'size': 13, 'virtual_size': None, 'disk_format': 'raw',
        'container_format': 'bare', 'checksum': '06ff7ee8eac5b8d5d8bbc0d1a2b4c1e5',
        'min_disk': 0, 'min_ram': 512, 'is_public': True, 'protected': False,
        'owner': 'tenant-a', 'created_at': '2026-11-27T20:44:52.899172',
        'updated_at': '2026-11-27T20:44:53.000001', 'deleted_at': None, 'deleted': False,
        'properties': {'os_distro': 'cirros'}, 'location': 'images/x'}
    image.update(changes)
    return image


def test_headers_of_an_active_image():
    headers = wire.image_meta_to_headers(_image())
    assert headers == {
        'x-image-meta-id': '71c675ab-d94f-49cd-a114-e12490b328d9',
        'x-image-meta-name': 'cirros',
        'x-image-meta-status': 'active',
        'x-image-meta-size': '13',
        'x-image-meta-disk_format': 'raw',
        'x-image-meta-container_format': 'bare',
        'x-image-meta-checksum': '06ff7ee8eac5b8d5d8bbc0d1a2b4c1e5',
        'x-image-meta-min_disk': '0',
        'x-image-meta-min_ram': '512',
        'x-image-meta-is_public': 'True',
        'x-image-meta-protected': 'False',
        'x-image-meta-owner': 'tenant-a',
        'x-image-meta-created_at': '2026-11-27T20:44:52.899172',
        'x-image-meta-updated_at': '2026-11-27T20:44:53.000001',
        'x-image-meta-deleted': 'False',
        'x-image-meta-property-os_distro': 'cirros',
        'ETag': '06ff7ee8eac5b8d5d8bbc0d1a2b4c1e5',
    }


def test_booleans_are_capitalised():
    headers = wire.image_meta_to_headers(_image(is_public=False, protected=True,
                                                deleted=True, status='deleted',
                                                deleted_at='2026-11-28T00:00:00.000000'))
    assert headers['x-image-meta-is_public'] == 'False'
    assert headers['x-image-meta-protected'] == 'True'
    assert headers['x-image-meta-deleted'] == 'True'
    assert headers['x-image-meta-deleted_at'] == '2026-11-28T00:00:00.000000'


def test_null_fields_are_omitted_and_no_etag_without_checksum():
    headers = wire.image_meta_to_headers(_image(
        status='queued', size=0, checksum=None, name=None, disk_format=None,
        container_format=None, owner=None, properties={}))
    for field in ('checksum', 'name', 'disk_format', 'container_format', 'owner',
                  'virtual_size', 'deleted_at'):
        assert 'x-image-meta-' + field not in headers
    assert 'ETag' not in headers
    assert headers['x-image-meta-size'] == '0'
    assert not [h for h in headers if h.startswith('x-image-meta-property-')]


def test_virtual_size_shown_when_set():
    headers = wire.image_meta_to_headers(_image(virtual_size=4096))
    assert headers['x-image-meta-virtual_size'] == '4096'


def test_null_properties_are_omitted():
    headers = wire.image_meta_to_headers(_image(properties={'kept': 'v', 'gone': None,
                                                            'empty': ''}))
    assert headers['x-image-meta-property-kept'] == 'v'
    assert 'x-image-meta-property-gone' not in headers
    assert headers['x-image-meta-property-empty'] == ''


def test_property_header_names_are_lower_cased():
    headers = wire.image_meta_to_headers(_image(properties={'CamelCase': 'v'}))
    assert headers['x-image-meta-property-camelcase'] == 'v'


def test_location_and_internal_fields_never_rendered():
    headers = wire.image_meta_to_headers(_image(sha256='abc'))
    assert not [h for h in headers if 'location' in h.lower() or 'sha256' in h.lower()
                or 'store' in h.lower()]


def test_etag_header():
    assert wire.etag_header({'checksum': 'abc'}) == {'ETag': 'abc'}
    assert wire.etag_header({'checksum': None}) == {}


def test_views():
    image = _image()
    assert list(wire.image_view(image)) == list(im.IMAGE_FIELDS)
    assert 'location' not in wire.image_view(image)
    assert wire.brief_view(image) == {
        'id': image['id'], 'name': 'cirros', 'size': 13, 'disk_format': 'raw',
        'container_format': 'bare', 'checksum': image['checksum']}


def test_json_response():
    response = wire.json_response({'images': []}, 201, {'Location': '/x'})
    assert response.status_code == 201
    assert response.body == '{"images": []}'
    assert response.headers['Content-Type'] == 'application/json'
    assert response.headers['Location'] == '/x'


# -- error_response -----------------------------------------------------------------
MESSAGE = 'Image with identifier abc not found'


def _error(accept, method='GET', error=None):
    return wire.error_response(error or NotFound(MESSAGE), accept, method)


@pytest.mark.parametrize('accept', [None, '', 'text/plain', 'application/xml',
                                    'application/octet-stream'])
def test_error_plain_text_by_default(accept):
    response = _error(accept)
    assert response.status_code == 404
    assert response.headers['Content-Type'] == 'text/plain; charset=UTF-8'
    assert response.body.startswith('404 Not Found\n\n')
    assert MESSAGE in response.body


def test_error_plain_text_body_shape():
    response = _error(None, error=Invalid("Invalid disk format 'foo' for image."))
    assert response.status_code == 400
    assert response.body == "400 Bad Request\n\nInvalid disk format 'foo' for image.\n\n   "


def test_error_json_for_application_json():
    response = _error('application/json')
    assert response.status_code == 404
    assert response.headers['Content-Type'] == 'application/json'
    document = json.loads(response.body)
    assert set(document) == {'message', 'code', 'title'}
    assert document['code'] == '404 Not Found'
    assert document['title'] == 'Not Found'
    assert document['message'].startswith(MESSAGE)
    assert '<br /><br />' in document['message']


@pytest.mark.parametrize('accept', ['*/*', 'text/html',
                                    'text/html,application/xhtml+xml,*/*;q=0.8'])
def test_error_html_for_any_and_html(accept):
    response = _error(accept)
    assert response.status_code == 404
    assert response.headers['Content-Type'] == 'text/html; charset=UTF-8'
    assert '<title>404 Not Found</title>' in response.body
    assert '<h1>404 Not Found</h1>' in response.body
    assert MESSAGE in response.body


def test_error_html_escapes_markup():
    response = _error('text/html', error=Invalid('Image name <b>bad</b>'))
    assert '<b>' not in response.body
    assert '&lt;b&gt;bad&lt;/b&gt;' in response.body


def test_error_json_when_json_is_preferred_by_quality():
    # WebOb's best_match: text/html has the lower q, application/json wins (v1 §18;
    # the reference answers application/json).
    response = _error('text/html;q=0.1, application/json')
    assert response.headers['Content-Type'] == 'application/json'
    assert json.loads(response.body)['code'] == '404 Not Found'


def test_error_json_when_json_is_listed_before_wildcard():
    # The more specific application/json beats */* at equal quality (reference: JSON).
    response = _error('application/json, */*')
    assert response.headers['Content-Type'] == 'application/json'


PLAIN, HTML, JSON = 'text/plain; charset=UTF-8', 'text/html; charset=UTF-8', 'application/json'


@pytest.mark.parametrize('accept,content_type', [
    # WebOb 1.7 Accept.best_match(['text/html', 'application/json']), as observed on the
    # reference: media ranges and q-values count, substrings do not.
    ('application/json, text/html', HTML),
    ('text/html, application/json', HTML),
    ('application/json;q=0.5, text/html', HTML),
    ('*/*, application/json', JSON),
    ('text/*', HTML),
    ('application/*', JSON),
    ('application/xhtml+xml', PLAIN),
    ('application/json-patch+json', PLAIN),
    ('application/json;q=0', PLAIN),
    ('text/html;q=0, application/json;q=0', PLAIN),
])
def test_error_format_follows_accept_negotiation(accept, content_type):
    response = _error(accept)
    assert response.status_code == 404
    assert response.headers['Content-Type'] == content_type
    assert MESSAGE in response.body


@pytest.mark.parametrize('accept', [None, 'application/json', '*/*', 'text/html'])
def test_head_errors_have_an_empty_body(accept):
    response = _error(accept, method='HEAD')
    assert response.status_code == 404
    assert response.body == ''


def test_error_headers_are_kept():
    response = _error(None, error=method_not_allowed('POST', 'GET, HEAD, PUT, DELETE'))
    assert response.status_code == 405
    assert response.headers['Allow'] == 'GET, HEAD, PUT, DELETE'
    assert '405 Method Not Allowed' in response.body


def test_error_title_in_json_for_bad_request():
    response = _error('application/json', error=Invalid('Bad header: x-image-meta-foo'))
    document = json.loads(response.body)
    assert document['code'] == '400 Bad Request'
    assert document['title'] == 'Bad Request'
    assert 'Bad header: x-image-meta-foo' in document['message']
