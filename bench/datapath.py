"""Local data path, MB/s (10^6 bytes a second), median of REPS transfers of SIZE bytes.

Ours, through the local runtime (`python -m chalicelib.local`, noauth, `local` stage:
inline uploads up to 1 TiB, inline downloads up to 64 MiB, so a 64 MiB image is
answered inline, not redirected):
  - inline upload: POST /v1/images with the bytes (create + upload in one request);
  - download: GET /v1/images/{id};
  - presigned upload, the API's own flow: POST /v1/images (queued) -> POST .../upload
    -> PUT to the presigned URL(s) -> (multipart) POST .../upload/complete -> HEAD until
    `active` (the runtime's event pump runs the finalizer: MD5 + SHA-256 of the object,
    then the move to images/<id>). Once with the default reservation (one PUT for
    64 MiB), once as multipart in 4 parts of 16 MiB sent 4 at a time (the uploader's
    default parallelism).
Baseline, same run, same moto server: a raw presigned PUT and GET (boto3, SigV4) of the
same bytes to the runtime's bucket, which is the floor any path through S3 can reach.
Reference Glance 15.0.2 (if set up): POST /v1/images with the bytes, GET.
"""
import hashlib
import os
import re
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench.report import fmt, fmt_ratio, ratio, save, table
from bench.servers import aws_endpoint, local_runtime, local_setting, reference_glance

MIB = 1 << 20
SIZE = int(os.environ.get('BENCH_DATAPATH_MIB', '64')) * MIB
REPS = int(os.environ.get('BENCH_DATAPATH_REPS', '3'))
PART = 16 * MIB
PARALLEL = 4
ACTIVE_TIMEOUT = 120
META = {'x-image-meta-disk_format': 'raw', 'x-image-meta-container_format': 'bare'}
OCTET = {'Content-Type': 'application/octet-stream'}


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def _expect(response, *statuses):
    if response.status_code not in statuses:
        raise RuntimeError('%s %s -> %d %s' % (response.request.method, response.url,
                                               response.status_code, response.text[:300]))
    return response


# -- one transfer each ---------------------------------------------------------------------
def inline_upload(session, base, data, name):
    response = _expect(session.post(base + '/v1/images', data=data, headers=dict(
        META, **OCTET, **{'x-image-meta-name': name}), timeout=300), 201)
    image = response.json()['image']
    assert image['status'] == 'active' and image['size'] == len(data), image
    return image['id']


def download(session, base, image_id, expected_md5=None):
    received, digest = 0, hashlib.md5() if expected_md5 else None
    with session.get(base + '/v1/images/%s' % image_id, stream=True, timeout=300,
                     headers={'Accept': 'application/octet-stream'}) as response:
        _expect(response, 200)
        for chunk in response.iter_content(MIB):
            received += len(chunk)
            if digest:
                digest.update(chunk)
    assert received == SIZE, received
    if digest:
        assert digest.hexdigest() == expected_md5, 'downloaded bytes differ'
    return received


def raw_put(session, s3, bucket, key, data):
    url = s3.generate_presigned_url('put_object', Params={'Bucket': bucket, 'Key': key},
                                    ExpiresIn=600)
    _expect(session.put(url, data=data, timeout=300), 200)


def raw_get(session, s3, bucket, key):
    url = s3.generate_presigned_url('get_object', Params={'Bucket': bucket, 'Key': key},
                                    ExpiresIn=600)
    received = 0
    with session.get(url, stream=True, timeout=300) as response:
        _expect(response, 200)
        for chunk in response.iter_content(MIB):
            received += len(chunk)
    assert received == SIZE, received


def presigned_upload(session, base, data, checksum, name, part_size=None):
    """The API's presigned flow, create to `active` -> (image id, seconds until the
    bytes were stored, as the client sees it)."""
    started = time.perf_counter()
    created = _expect(session.post(base + '/v1/images', headers=dict(
        META, **{'x-image-meta-name': name}), timeout=60), 201).json()['image']
    body = {'size': len(data), 'checksum': checksum}
    if part_size:
        body['part_size'] = part_size
    upload = _expect(session.post(base + '/v1/images/%s/upload' % created['id'], json=body,
                                  timeout=60), 201).json()['upload']
    if upload['mode'] == 'single':
        _expect(session.put(upload['url'], data=data, headers=upload['headers'],
                            timeout=300), 200)
    else:
        def put(part):
            start = (part['part_number'] - 1) * upload['part_size']
            import requests
            response = _expect(requests.put(part['url'], data=data[start:start + part['size']],
                                            timeout=300), 200)
            return {'part_number': part['part_number'], 'etag': response.headers['ETag']}
        with ThreadPoolExecutor(PARALLEL) as pool:
            parts = list(pool.map(put, upload['parts']))
        _expect(session.post(base + '/v1/images/%s/upload/complete' % created['id'],
                             json={'parts': parts}, timeout=300), 202)
    stored = time.perf_counter() - started
    deadline = time.monotonic() + ACTIVE_TIMEOUT
    while True:
        response = _expect(session.head(base + '/v1/images/%s' % created['id'], timeout=30),
                           200)
        status = response.headers.get('x-image-meta-status')
        if status == 'active':
            break
        if status == 'killed' or time.monotonic() > deadline:
            raise RuntimeError('presigned upload of %s ended %s' % (created['id'], status))
        time.sleep(0.02)
    assert response.headers.get('x-image-meta-checksum') == checksum
    return created['id'], stored, upload['mode']


def delete(session, base, image_id):
    _expect(session.delete(base + '/v1/images/%s' % image_id, timeout=60), 200, 204)


# -- the runs ------------------------------------------------------------------------------------
def measure_ours(data, checksum):
    import boto3
    import requests
    from botocore.config import Config
    seconds = {name: [] for name in ('inline_upload', 'download', 'raw_put', 'raw_get',
                                     'presigned_single', 'presigned_single_stored',
                                     'presigned_multipart', 'presigned_multipart_stored')}
    with local_runtime('noauth') as runtime:
        base, endpoint, bucket = runtime.base_url, aws_endpoint(runtime), local_setting('GLANCE_IMAGE_BUCKET')
        s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                          aws_access_key_id='testing', aws_secret_access_key='testing',
                          config=Config(signature_version='s3v4'))
        session, raw = requests.Session(), requests.Session()
        presigned_ids = []
        for rep in range(REPS):
            tag = uuid.uuid4().hex[:8]
            elapsed, image_id = timed(inline_upload, session, base, data, 'bench-inline-' + tag)
            seconds['inline_upload'].append(elapsed)
            elapsed, _ = timed(download, session, base, image_id, checksum if rep == 0 else None)
            seconds['download'].append(elapsed)
            delete(session, base, image_id)

            key = 'bench/%s' % uuid.uuid4()
            seconds['raw_put'].append(timed(raw_put, raw, s3, bucket, key, data)[0])
            seconds['raw_get'].append(timed(raw_get, raw, s3, bucket, key)[0])
            s3.delete_object(Bucket=bucket, Key=key)

            for kind, part_size in (('single', None), ('multipart', PART)):
                elapsed, (image_id, stored, mode) = timed(
                    presigned_upload, session, base, data, checksum,
                    'bench-presigned-%s-%s' % (kind, tag), part_size)
                assert mode == kind, (mode, kind)
                seconds['presigned_' + kind].append(elapsed)
                seconds['presigned_%s_stored' % kind].append(stored)
                presigned_ids.append(image_id)
                delete(session, base, image_id)
        through_api = _request_body_bytes(runtime.log.name, presigned_ids)
    return seconds, through_api


def _request_body_bytes(log_path, image_ids):
    """Bytes of request bodies the API read for these images (its access log)."""
    total, wanted = 0, set(image_ids)
    line_format = re.compile(r'^\S+ /v1/images/([0-9a-f-]{36})\S* -> \d+ '
                             r'\(request body (\d+) bytes')
    with open(log_path, encoding='utf-8', errors='replace') as log:
        for line in log:
            match = line_format.match(line)
            if match and match.group(1) in wanted:
                total += int(match.group(2))
    return total


def measure_reference(base, data, checksum):
    import requests
    seconds = {'inline_upload': [], 'download': []}
    session = requests.Session()
    for rep in range(REPS):
        elapsed, image_id = timed(inline_upload, session, base, data,
                                  'bench-inline-%s' % uuid.uuid4().hex[:8])
        seconds['inline_upload'].append(elapsed)
        elapsed, _ = timed(download, session, base, image_id, checksum if rep == 0 else None)
        seconds['download'].append(elapsed)
        delete(session, base, image_id)
    return seconds


def mb_per_s(samples):
    return SIZE / statistics.median(samples) / 1e6


def main():
    data = os.urandom(SIZE)
    checksum = hashlib.md5(data).hexdigest()
    ours, through_api = measure_ours(data, checksum)
    with reference_glance() as (reference_url, reference_line):
        reference = measure_reference(reference_url, data, checksum) if reference_url else None
    speed = {name: mb_per_s(samples) for name, samples in ours.items()}
    ref_speed = ({name: mb_per_s(samples) for name, samples in reference.items()}
                 if reference else {})
    label = '%d MiB' % (SIZE // MIB)
    rows, figures = [], {}

    def row(key, figure, value, baseline, baseline_is, digits=1):
        figures[key] = {'ours': value, 'baseline': baseline, 'ratio': ratio(value, baseline),
                        'baseline_is': baseline_is}
        rows.append([figure, fmt(value, digits), fmt(baseline, digits),
                     fmt_ratio(ratio(value, baseline)), baseline_is])

    row('inline_upload', 'inline upload (POST /v1/images + body), MB/s',
        speed['inline_upload'], speed['raw_put'], 'raw presigned PUT to the same moto')
    row('download', 'download (GET /v1/images/{id}, inline), MB/s', speed['download'],
        speed['raw_get'], 'raw presigned GET from the same moto')
    row('presigned_single', 'presigned upload, 1 PUT, create->active, MB/s',
        speed['presigned_single'], speed['raw_put'], 'raw presigned PUT to the same moto')
    row('presigned_multipart',
        'presigned upload, %dx%d MiB parts (%d at once), create->active, MB/s'
        % (SIZE // PART, PART // MIB, PARALLEL), speed['presigned_multipart'],
        speed['raw_put'], 'raw presigned PUT to the same moto')
    row('presigned_single_stored', 'presigned upload, 1 PUT, create->bytes stored, MB/s',
        speed['presigned_single_stored'], speed['raw_put'], 'raw presigned PUT to the same moto')
    row('presigned_multipart_stored', 'presigned upload, %dx%d MiB parts, create->bytes '
        'stored, MB/s' % (SIZE // PART, PART // MIB), speed['presigned_multipart_stored'],
        speed['raw_put'], 'raw presigned PUT to the same moto')
    inline_bytes = SIZE * REPS
    figures['bytes_through_api'] = {'ours': through_api, 'baseline': inline_bytes,
                                    'baseline_is': 'inline uploads of the same runs'}
    rows.append(['request-body bytes the API read, %d presigned uploads (JSON only)'
                 % (2 * REPS),
                 fmt(through_api), fmt(inline_bytes), fmt_ratio(ratio(through_api, inline_bytes)),
                 'the %d inline uploads of the same run' % REPS])
    table('Data path, %s, median of %d (MB/s = 10^6 bytes/s; baseline: raw S3 on the same '
          'moto server)' % (label, REPS), ['figure', 'ours', 'baseline', 'ratio', 'baseline is'],
          rows, notes=['local stage: GLANCE_INLINE_UPLOAD_LIMIT 1 TiB, '
                       'GLANCE_INLINE_DOWNLOAD_LIMIT 64 MiB (a %s image is answered inline; '
                       'the cloud default is 4 MiB, above which uploads must be presigned '
                       'and downloads are a 302 to S3)' % label,
                       '"create->active" includes the finalizer (MD5 + SHA-256 of the object, '
                       'the move to images/<id>) and the event pump\'s polling; "bytes '
                       'stored" ends when the last PUT (multipart: complete) returns'])
    if reference is None:
        print(reference_line)
        print()
    else:
        ref_rows = []
        for key, figure in (('inline_upload', 'inline upload (POST /v1/images + body), MB/s'),
                            ('download', 'download (GET /v1/images/{id}), MB/s')):
            figures['reference_' + key] = {'ours': speed[key], 'reference': ref_speed[key],
                                           'ratio': ratio(speed[key], ref_speed[key])}
            ref_rows.append([figure, fmt(speed[key], 1), fmt(ref_speed[key], 1),
                             fmt_ratio(ratio(speed[key], ref_speed[key]))])
        table('Data path against the reference Glance v1, %s, median of %d' % (label, REPS),
              ['figure', 'ours', 'reference', 'ratio'], ref_rows,
              notes=[reference_line + '; its store is the local file system '
                     '(ours: S3 on moto)'])
    save('datapath', {'size_bytes': SIZE, 'reps': REPS, 'figures': figures,
                      'seconds': {'ours': ours, 'reference': reference},
                      'reference': reference_line})
    return figures


if __name__ == '__main__':
    main()
