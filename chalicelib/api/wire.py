"""The v1 wire format: x-image-meta-* headers <-> image dicts, JSON views, errors.

The one header codec of the service (glance.common.utils.get_image_meta_from_headers
and image_meta_to_http_headers, and the v1 ImageSerializer).
"""
import html
import json

from chalice import Response

from chalicelib.api.errors import http_error
from chalicelib.domain import image_meta as im
from chalicelib.domain.errors import Invalid

META_PREFIX = 'x-image-meta-'
PROPERTY_PREFIX = 'x-image-meta-property-'
_TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')
HEAD_CONTENT_TYPE = 'text/html; charset=UTF-8'


def parse_bool(value):
    """Glance's lenient boolean: true-ish strings are true, anything else false."""
    return value is not None and value.strip().lower() in _TRUE_STRINGS


# -- request headers -> image dict -------------------------------------------------
def image_meta_from_headers(headers):
    """`x-image-meta-*` headers -> {field: value, 'properties': {...}} (v1 §5).

    Only the fields present are returned; an empty value means null.
    """
    meta, properties = {}, {}
    for name, value in headers.items():
        name = name.lower()
        if not name.startswith(META_PREFIX):
            continue
        value = value if value != '' else None
        if name.startswith(PROPERTY_PREFIX):
            key = name[len(PROPERTY_PREFIX):].replace('-', '_')
            if not key:  # a nameless property: nothing could address it (or store it)
                raise Invalid('Bad header: %s' % name)
            im.check_property_name(key)
            im.check_header_value(name, value)
            properties[key] = value
            continue
        field = name[len(META_PREFIX):].replace('-', '_')
        if field not in im.ACCEPTED_META_FIELDS:
            raise Invalid('Bad header: %s' % name)
        im.check_header_value(name, value)
        meta[field] = _parse_field(field, value)
    if properties:
        meta['properties'] = properties
    return meta


def _parse_field(field, value):
    if field in im.BOOLEAN_FIELDS:
        return parse_bool(value)
    if field in im.INTEGER_FIELDS:
        if value is None or (field == 'virtual_size' and value == 'None'):
            return None
        try:
            number = int(value)
        except ValueError:
            raise Invalid("Invalid value '%s' for parameter '%s': Cannot convert image "
                             "%s '%s' to an integer." % (value, field, field, value)) from None
        if number < 0:
            raise Invalid("Invalid value '%s' for parameter '%s': Cannot be a negative "
                             "value." % (value, field))
        return number
    return value


# -- image dict -> response headers and JSON ---------------------------------------
def _header_text(value):
    """str(True) == 'True', as the reference sends. Control characters, refused since
    but possibly stored before, are escaped (`\\x0d`): a raw line break would split
    the response (the JSON views keep the exact value)."""
    return im.CONTROL_CHARACTERS.sub(lambda found: '\\x%02x' % ord(found.group()),
                                     str(value))


def image_meta_to_headers(image):
    headers = {}
    for field in im.IMAGE_FIELDS:
        if field != 'properties' and image.get(field) is not None:
            headers[META_PREFIX + field] = _header_text(image[field])
    for name, value in image['properties'].items():
        if value is not None:
            headers[PROPERTY_PREFIX + _header_text(name.lower())] = _header_text(value)
    headers.update(etag_header(image))
    return headers


def etag_header(image):
    return {'ETag': image['checksum']} if image.get('checksum') else {}


def image_view(image):
    return {field: image[field] for field in im.IMAGE_FIELDS}


def brief_view(image):
    return {field: image[field] for field in im.BRIEF_FIELDS}


def json_response(document, status_code=200, headers=None):
    return Response(body=json.dumps(document),
                    headers=dict(headers or {}, **{'Content-Type': 'application/json'}),
                    status_code=status_code)


# -- errors (webob's HTTPException bodies, v1 §18) --------------------------------
_HTML_PAGE = ('<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n'
              '  <h1>{status}</h1>\n  {message}<br /><br />\n\n\n\n </body>\n</html>')


def best_match(accept, offers):
    """webob 1.7's MIMEAccept.best_match: q-values, then the most specific range."""
    ranges = []
    for item in accept.split(','):
        mask, *params = [part.strip() for part in item.split(';')]
        quality = 1.0
        for param in params:
            if param.startswith('q='):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if mask and quality > 0:
            ranges.append((mask.lower(), quality))
    best, best_quality, matched_by = None, -1.0, '*/*'
    for offer in offers:
        for mask, quality in ranges:
            if quality < best_quality or (quality == best_quality
                                          and matched_by.count('*') <= mask.count('*')):
                continue
            if _media_range_matches(mask, offer):
                best, best_quality, matched_by = offer, quality, mask
    return best


def _media_range_matches(mask, offer):
    if mask == '*/*':
        return True
    if mask.endswith('/*'):
        return offer.split('/', 1)[0] == mask[:-2]
    return offer == mask


def error_for(request, error):
    """The error answer to a chalice request (its Accept and method decide the form)."""
    return error_response(error, request.headers.get('accept'), request.method)


def error_response(error, accept, method):
    """A domain or HTTP error rendered as webob 1.7 does, chosen by the Accept header."""
    error = http_error(error)
    status = '%d %s' % (error.code, error.title)
    match = best_match(accept or '', ('text/html', 'application/json'))
    if method == 'HEAD':
        content_type, body = 'text/plain; charset=UTF-8', ''
    elif match == 'text/html':
        content_type = 'text/html; charset=UTF-8'
        body = _HTML_PAGE.format(status=status, message=html.escape(error.message))
    elif match == 'application/json':
        content_type = 'application/json'
        body = json.dumps({'message': error.message + '<br /><br />\n\n\n',
                           'code': status, 'title': error.title})
    else:
        content_type = 'text/plain; charset=UTF-8'
        body = '%s\n\n%s\n\n   ' % (status, error.message)
    headers = dict(error.headers, **{'Content-Type': content_type})
    return Response(body=body, headers=headers, status_code=error.code)
