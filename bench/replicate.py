"""Replication throughput: glance_replicate copying one 1 GiB image from the reference
Glance (v1, file store) into our runtime (presigned multipart upload, 64 MiB parts,
finalizer included), beside a raw presigned S3 PUT of the same bytes to the same moto,
and the replicator's peak memory (its own max RSS, from wait4).

    .venv/bin/python -m bench replicate          # REPLICATE_BENCH_MIB=1024 by default

The reference runs from its own home (tests/e2e/reference_glance.py: setup.sh, free
ports, stopped at the end); the replicator runs from .venv-clients as a user would.
"""
import hashlib
import os
import subprocess
import time
import uuid

import requests

from bench.datapath import raw_put
from bench.report import PROJECT_DIR, table
from bench.servers import aws_endpoint, local_runtime, local_setting

MIB = 1 << 20
SIZE = int(os.environ.get('REPLICATE_BENCH_MIB', '1024')) * MIB
CLIENTS_PYTHON = os.path.join(PROJECT_DIR, '.venv-clients', 'bin', 'python')
ADMIN = {'X-Identity-Status': 'Confirmed', 'X-Tenant-Id': 'bench', 'X-Roles': 'admin'}


class Repeated:
    """`size` bytes (a random MiB over and over) as a request body, never in memory."""

    def __init__(self, size, block):
        self.size, self.block = size, block

    def __len__(self):
        return self.size

    def __iter__(self):
        left = self.size
        while left:
            chunk = self.block[:min(left, len(self.block))]
            left -= len(chunk)
            yield chunk


def md5_of(body):
    digest = hashlib.md5()
    for chunk in body:
        digest.update(chunk)
    return digest.hexdigest()


def seed(reference, tenant, body):
    headers = dict(ADMIN, **{'x-image-meta-name': 'bench-1gib', 'x-image-meta-owner': tenant,
                             'x-image-meta-disk_format': 'raw',
                             'x-image-meta-container_format': 'bare',
                             'Content-Type': 'application/octet-stream'})
    response = requests.post(reference.url + '/v1/images', headers=headers, data=body,
                             timeout=600)
    assert response.status_code == 201, response.text[:500]
    return response.json()['image']


def replicate(reference, runtime, tenant):
    """-> (seconds, peak RSS in KiB, stdout) of `glance_replicate copy`."""
    argv = [CLIENTS_PYTHON, '-m', 'glance_replicate', 'copy', reference.url, runtime.base_url,
            '--tenant', tenant, '--source-api-version', '1',
            '--source-trusted-tenant', 'bench', '--target-trusted-tenant', 'bench']
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, output
    return seconds, usage.ru_maxrss, output


def main():
    import boto3
    from botocore.config import Config
    from tests.e2e.reference_glance import running_reference
    body = Repeated(SIZE, os.urandom(MIB))
    checksum = md5_of(body)
    tenant = 'bench-%s' % uuid.uuid4().hex[:8]
    with running_reference() as reference, \
            local_runtime('trusted-headers', {'GLANCE_INLINE_UPLOAD_LIMIT': str(4 * MIB)}) \
            as runtime:
        image = seed(reference, tenant, body)
        assert image['checksum'] == checksum
        seconds, peak_kib, output = replicate(reference, runtime, tenant)
        copied = requests.head('%s/v1/images/%s' % (runtime.base_url, image['id']),
                               headers=ADMIN, timeout=30).headers
        assert (copied['x-image-meta-status'], copied['x-image-meta-checksum']) == (
            'active', checksum), dict(copied)
        s3 = boto3.client('s3', endpoint_url=aws_endpoint(runtime), region_name='us-east-1',
                          aws_access_key_id='testing', aws_secret_access_key='testing',
                          config=Config(signature_version='s3v4'))
        started = time.monotonic()
        raw_put(requests.Session(), s3, local_setting('GLANCE_IMAGE_BUCKET'),
                'bench/%s' % uuid.uuid4(), body)
        raw_seconds = time.monotonic() - started
    print(output.strip())
    table('Replication of one %d MiB image, reference Glance -> runtime (MB/s = 10^6 '
          'bytes/s)' % (SIZE // MIB), ('measure', 'value'), [
              ('glance_replicate copy (read, presigned parts, finalizer)',
               '%.1f MB/s (%.1f s)' % (SIZE / seconds / 1e6, seconds)),
              ('raw presigned PUT of the same bytes, same moto',
               '%.1f MB/s (%.1f s)' % (SIZE / raw_seconds / 1e6, raw_seconds)),
              ('replicator peak memory (max RSS)', '%.1f MiB' % (peak_kib / 1024))])


if __name__ == '__main__':
    main()
