"""The few Glance v1 calls the uploader makes (the API, never S3)."""
import requests

META_PREFIX = 'x-image-meta-'
PROPERTY_PREFIX = 'x-image-meta-property-'
INTEGER_FIELDS = ('size', 'min_disk', 'min_ram', 'virtual_size')
BOOLEAN_FIELDS = ('is_public', 'protected', 'deleted')
TIMEOUT = (10, 120)  # (connect, read) seconds


class ApiError(Exception):
    def __init__(self, method, path, status, message):
        super().__init__('%s %s: HTTP %d %s' % (method, path, status, message))
        self.status = status


class Glance:
    def __init__(self, url, headers=None):
        url = url.rstrip('/')
        self.base = url if url.endswith('/v1') else url + '/v1'
        self.session = requests.Session()
        # JSON error bodies carry the service's message, which we show as is
        self.session.headers['Accept'] = 'application/json'
        self.session.headers.update(headers or {})

    def call(self, method, path, expect=(200,), **kwargs):
        response = self.session.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        if response.status_code not in expect:
            raise ApiError(method, self.base + path, response.status_code, _message(response))
        return response

    def create_image(self, name, disk_format, container_format):
        headers = {'x-image-meta-name': name, 'x-image-meta-disk_format': disk_format,
                   'x-image-meta-container_format': container_format}
        return self.call('POST', '/images', (201,), headers=headers).json()['image']

    def reserve(self, image_id, size, checksum, part_size=None):
        body = {'size': size, 'checksum': checksum}
        if part_size:
            body['part_size'] = part_size
        return self.call('POST', '/images/%s/upload' % image_id, (201,),
                         json=body).json()['upload']

    def reservation(self, image_id, part_marker=None):
        """The reservation; a multipart one holds the page of parts after `part_marker`
        (its `next_part_marker` asks for the following page)."""
        params = {} if part_marker is None else {'part_marker': part_marker}
        return self.call('GET', '/images/%s/upload' % image_id,
                         params=params).json()['upload']

    def complete(self, image_id, parts=None):
        body = {'parts': parts} if parts is not None else None
        return self.call('POST', '/images/%s/upload/complete' % image_id, (202,),
                         json=body).json()['image']

    def image(self, image_id):
        """HEAD /v1/images/{id}: the x-image-meta-* headers as an image record."""
        response = self.call('HEAD', '/images/%s' % image_id)
        return image_from_headers(response.headers)


def image_from_headers(headers):
    image, properties = {}, {}
    for name, value in headers.items():
        name = name.lower()
        if name.startswith(PROPERTY_PREFIX):
            properties[name[len(PROPERTY_PREFIX):]] = value
        elif name.startswith(META_PREFIX):
            field = name[len(META_PREFIX):]
            if field in INTEGER_FIELDS and value.isdigit():
                value = int(value)
            elif field in BOOLEAN_FIELDS:
                value = value.lower() == 'true'
            image[field] = value
    image['properties'] = properties
    return image


def _message(response):
    try:
        message = response.json()['message']
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or response.reason
    # webob appends '<br /><br />' and blank lines to the JSON message
    return message.split('<br />')[0].strip()
