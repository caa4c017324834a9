"""Safe by default: metadata every reader can read back, and URLs the client cannot steer.

- `x-image-meta-*` values with control characters (C0 but TAB, DEL; a folded header's
  CR LF) are 400 naming the header; values, property names and a record's whole user
  metadata are bounded so that every item fits DynamoDB's 400 KB; a refusal stores
  nothing. Records holding such values from before are still read (HEAD, GET).
- The `Location` of a create, the versions document and the OpenAPI servers come from
  GLANCE_PUBLIC_ENDPOINT, else API Gateway's domain and stage, else (locally) the Host
  with an http or https X-Forwarded-Proto only.
"""
import json
import socket
import uuid

import pytest

from chalicelib.api import common, wire
from chalicelib.domain import image_meta as im
from chalicelib.domain.errors import Invalid
from tests.helpers import (body_json, create_image, error_text, get_header, head,
                           LambdaContext, proxy_event, stored_image_ids,
                           stored_object_keys, tenant, update_image)

A = tenant('tenant-a')
FOLDED = 'foo\r\n Set-Cookie: a=b'
REFUSED = {'folded CR LF': FOLDED, 'LF': 'a\nb', 'CR': 'a\rb', 'NUL': 'a\x00b',
           'DEL': 'a\x7fb', 'ESC': '\x1b[31mred', 'BEL': 'a\x07'}
KIB60 = 60 * 1024
GATEWAY_BASE = 'https://abc123.execute-api.us-east-1.amazonaws.com/api'
SPOOFING = {'Host': 'evil.example', 'X-Forwarded-Proto': 'javascript'}


def _refusal(headers):
    with pytest.raises(Invalid) as refused:
        im.validate_image_meta(wire.image_meta_from_headers(headers),
                               _Formats())
    return refused.value.message


class _Formats:
    disk_formats, container_formats = ('raw',), ('bare',)


# -- the header codec --------------------------------------------------------------
@pytest.mark.parametrize('value', REFUSED.values(), ids=list(REFUSED))
@pytest.mark.parametrize('header', ('x-image-meta-name', 'x-image-meta-property-os_distro',
                                    'x-image-meta-location'))
def test_control_characters_are_refused_naming_the_header(header, value):
    message = _refusal({header: value})
    assert header in message and 'control character' in message


def test_tab_and_non_ascii_text_are_accepted():
    meta = wire.image_meta_from_headers({
        'x-image-meta-name': 'a\tb', 'x-image-meta-property-note': 'caf\xe9 \u20ac\x85 tab\t'})
    assert meta == {'name': 'a\tb', 'properties': {'note': 'caf\xe9 \u20ac\x85 tab\t'}}


def test_property_value_limit_in_utf8_bytes_at_and_past_the_boundary():
    header = 'x-image-meta-property-big'
    at_limit = wire.image_meta_from_headers({header: 'x' * im.META_VALUE_MAX})
    assert len(at_limit['properties']['big']) == 65535
    assert 'x-image-meta-property-big' in _refusal({header: 'x' * (im.META_VALUE_MAX + 1)})
    assert '65536 bytes, the limit is 65535' in _refusal({header: '\xe9' * 32768})


def test_property_name_limit_at_and_past_the_boundary():
    name = 'p' * im.PROPERTY_NAME_MAX
    assert wire.image_meta_from_headers(
        {'x-image-meta-property-' + name: 'v'})['properties'] == {name: 'v'}
    message = _refusal({'x-image-meta-property-' + name + 'p': 'v'})
    assert message == 'Image property name too long: 256 characters, the limit is 255.'


def _image(**fields):
    image = im.new_image(str(uuid.uuid4()), {'name': 'n'}, 'tenant-a', im.QUEUED,
                         im.now_string())
    image.update(fields)
    return image


def test_record_size_at_and_past_the_limit():
    # 'n' (name) + 'tenant-a' (owner) + one property: name 'p', value filling the rest
    room = im.USER_METADATA_MAX - 1 - 8 - 1 - im.PROPERTY_OVERHEAD
    at_limit = _image(properties={'p': 'v' * room})
    assert im.user_metadata_size(at_limit) == im.USER_METADATA_MAX
    im.check_record_size(at_limit)
    with pytest.raises(Invalid) as refused:
        im.check_record_size(_image(properties={'p': 'v' * (room + 1)}))
    assert refused.value.message == ('Image metadata too large: 262145 bytes of names and '
                                     'values, the limit is 262144.')


def test_record_size_counts_fields_utf8_and_each_property():
    image = _image(name='\xe9', location='s3://x', properties={'a': None, 'b': 'cc'})
    # name 2 + owner 8 + location 6 + 'a' 1 + 2 + 'b' 'cc' 3 + 2
    assert im.user_metadata_size(image) == 24


def test_stored_control_characters_are_escaped_in_headers():
    image = _image(name='evil\r\nSet-Cookie: a=b', properties={
        'folded': FOLDED, 'nul': 'a\x00b\x7f', 'tab': 'a\tb'})
    headers = wire.image_meta_to_headers(image)
    for name, value in headers.items():
        assert im.control_character(name + value) is None, (name, value)
    assert headers['x-image-meta-name'] == 'evil\\x0d\\x0aSet-Cookie: a=b'
    assert headers['x-image-meta-property-folded'] == 'foo\\x0d\\x0a Set-Cookie: a=b'
    assert headers['x-image-meta-property-nul'] == 'a\\x00b\\x7f'
    assert headers['x-image-meta-property-tab'] == 'a\tb'


# -- the API: refusals store nothing -------------------------------------------------
@pytest.mark.parametrize('value', REFUSED.values(), ids=list(REFUSED))
def test_create_with_a_control_character_is_400_and_stores_nothing(client, value):
    response, _ = create_image(client, A, data=b'bytes', properties={'os_distro': value})
    assert response.status_code == 400
    assert "Invalid value for header x-image-meta-property-os_distro: control character" \
        in error_text(response)
    assert stored_image_ids() == [] and stored_object_keys() == []


def test_create_with_a_tab_is_accepted(client):
    response, image = create_image(client, A, name='a\tb', properties={'note': 'x\ty'})
    assert response.status_code == 201
    assert (image['name'], image['properties']) == ('a\tb', {'note': 'x\ty'})


def test_create_past_the_record_limit_is_400_and_stores_nothing(client):
    properties = {'p%d' % i: 'v' * KIB60 for i in range(5)}   # 300 KiB
    response, _ = create_image(client, A, data=b'bytes', properties=properties)
    assert response.status_code == 400
    assert 'Image metadata too large' in error_text(response)
    assert 'the limit is 262144' in error_text(response)
    assert stored_image_ids() == [] and stored_object_keys() == []


def test_create_below_the_record_limit_reads_back(client):
    properties = {'p%d' % i: 'v' * KIB60 for i in range(4)}   # 240 KiB
    response, image = create_image(client, A, data=b'bytes', properties=properties)
    assert response.status_code == 201
    meta = head(client, A, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-property-p3') == 'v' * KIB60
    download = client.http.get('/v1/images/%s' % image['id'], headers=A)
    assert download.status_code == 200 and download.body == b'bytes'


def test_an_update_merging_past_the_record_limit_is_400_and_changes_nothing(client):
    properties = {'p%d' % i: 'v' * KIB60 for i in range(4)}
    _, image = create_image(client, A, properties=properties)
    keep = {'x-glance-registry-purge-props': 'false'}
    response, _ = update_image(client, A, image['id'], headers=keep,
                               properties={'p4': 'v' * KIB60})
    assert response.status_code == 400
    assert 'Image metadata too large' in error_text(response)
    stored = common.image_service().catalog.get(image['id'])
    assert sorted(stored['properties']) == ['p0', 'p1', 'p2', 'p3']
    assert stored['updated_at'] == image['updated_at']
    # purged, the same property fits: the limit is on the record as stored
    response, updated = update_image(client, A, image['id'], properties={'p4': 'v' * KIB60})
    assert response.status_code == 200 and sorted(updated['properties']) == ['p4']


def test_an_update_with_a_control_character_changes_nothing(client):
    _, image = create_image(client, A, properties={'kept': 'yes'})
    response, _ = update_image(client, A, image['id'], name=FOLDED)
    assert response.status_code == 400
    assert 'x-image-meta-name' in error_text(response)
    stored = common.image_service().catalog.get(image['id'])
    assert (stored['name'], stored['properties']) == ('image', {'kept': 'yes'})


def test_a_record_stored_with_line_breaks_is_still_read(client):
    """Written before the refusal existed: HEAD and GET answer, escaped; JSON is exact."""
    image = _image(name='line\r\nbreak', status=im.ACTIVE, is_public=True,
                   properties={'folded': FOLDED, 'plain': 'ok'})
    common.image_service().catalog.create(image)
    for method in ('HEAD', 'GET'):
        response = client.http.request(method, '/v1/images/%s' % image['id'], headers=A)
        assert response.status_code == 200, (method, response.status_code)
        assert get_header(response, 'x-image-meta-property-folded') == \
            'foo\\x0d\\x0a Set-Cookie: a=b'
        assert get_header(response, 'x-image-meta-name') == 'line\\x0d\\x0abreak'
        assert get_header(response, 'x-image-meta-property-plain') == 'ok'
        assert get_header(response, 'Set-Cookie') is None
    detail = body_json(client.http.get('/v1/images/detail', headers=A))['images']
    assert [(i['name'], i['properties']['folded']) for i in detail] == \
        [('line\r\nbreak', FOLDED)]


@pytest.mark.slow
def test_a_folded_header_over_real_http_is_400(runtime):
    """The attacker's request: an obsolete line folding continues the value."""
    host, port = runtime.base_url.split('//')[1].split(':')
    request = ('POST /v1/images HTTP/1.1\r\nHost: %s:%s\r\nX-Identity-Status: Confirmed\r\n'
               'X-Tenant-Id: tenant-a\r\nX-Roles: member\r\nContent-Length: 0\r\n'
               'x-image-meta-property-os_distro: foo\r\n Set-Cookie: a=b\r\n'
               'Connection: close\r\n\r\n' % (host, port))
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request.encode('ascii'))
        answer = b''
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b'\r\n')
    assert status_line.split()[1] == b'400', answer
    assert b'x-image-meta-property-os_distro' in rest and b'Set-Cookie' not in \
        rest.partition(b'\r\n\r\n')[0]


# -- generated URLs --------------------------------------------------------------------
def _versions_hrefs(response):
    return {version['links'][0]['href'] for version in json.loads(response.body)['versions']}


def test_locally_the_host_stays_with_an_http_or_https_scheme_only(client):
    for proto, scheme in (('javascript', 'http'), ('https', 'https'), ('HTTP', 'http'),
                          ('ftp', 'http'), (None, 'http')):
        headers = {'Host': 'images.local:9292'}
        if proto:
            headers['X-Forwarded-Proto'] = proto
        response, image = create_image(client, dict(A, **headers))
        assert get_header(response, 'Location') == \
            '%s://images.local:9292/v1/images/%s' % (scheme, image['id'])
        assert _versions_hrefs(client.http.get('/versions', headers=headers)) == \
            {'%s://images.local:9292/v1/' % scheme}
        served = body_json(client.http.get('/v1/openapi.json', headers=headers))
        assert served['servers'] == [{'url': '%s://images.local:9292' % scheme}]


@pytest.mark.parametrize('host', ('evil.example/x?', 'a b', '"><script>', '',
                                  'user@evil.example'))
def test_locally_a_host_that_is_not_a_host_gives_localhost(client, host):
    response, image = create_image(client, dict(A, Host=host))
    assert get_header(response, 'Location') == 'http://localhost/v1/images/%s' % image['id']


def test_locally_ipv6_and_ports_are_kept(client):
    response, image = create_image(client, dict(A, Host='[::1]:9292'))
    assert get_header(response, 'Location') == 'http://[::1]:9292/v1/images/%s' % image['id']


def test_the_public_endpoint_wins_over_the_client(client, settings_override):
    settings_override(public_endpoint='https://images.example.com/')
    response, image = create_image(client, dict(A, **SPOOFING))
    assert get_header(response, 'Location') == \
        'https://images.example.com/v1/images/%s' % image['id']
    assert _versions_hrefs(client.http.get('/versions', headers=SPOOFING)) == \
        {'https://images.example.com/v1/'}
    assert _versions_hrefs(client.http.get('/', headers=SPOOFING)) == \
        {'https://images.example.com/v1/'}
    served = body_json(client.http.get('/v1/openapi.json', headers=SPOOFING))
    assert served['servers'] == [{'url': 'https://images.example.com'}]


def test_behind_api_gateway_its_domain_and_stage_not_the_host(handler):
    for spoof in (SPOOFING, dict(SPOOFING, **{'X-Forwarded-Proto': 'https'}), {}):
        result = handler(proxy_event('POST', '/v1/images', headers=dict(
            A, **spoof, **{'x-image-meta-name': 'gw'})), LambdaContext())
        assert result['statusCode'] == 201, result
        image = json.loads(result['body'])['image']
        assert result['headers']['Location'] == '%s/v1/images/%s' % (GATEWAY_BASE,
                                                                     image['id'])
        versions = handler(proxy_event('GET', '/versions', headers=spoof), LambdaContext())
        assert {v['links'][0]['href'] for v in json.loads(versions['body'])['versions']} == \
            {GATEWAY_BASE + '/v1/'}
        described = handler(proxy_event('GET', '/v1/openapi.json', headers=spoof),
                            LambdaContext())
        assert json.loads(described['body'])['servers'] == [{'url': GATEWAY_BASE}]


def test_behind_api_gateway_the_public_endpoint_still_wins(handler, settings_override):
    settings_override(public_endpoint='https://images.example.com')
    result = handler(proxy_event('POST', '/v1/images', headers=dict(A, **SPOOFING)),
                     LambdaContext())
    image = json.loads(result['body'])['image']
    assert result['headers']['Location'] == \
        'https://images.example.com/v1/images/%s' % image['id']

