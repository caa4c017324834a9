"""Function sizing: MB/s (10^6 bytes a second) of the finalizer's and the copier's
work on ONE core of this machine, and what that makes per Lambda memory size.

Measured in a child process pinned to one CPU (os.sched_setaffinity), median of REPS:
  - hash: MD5 and SHA-256 updated together in 1 MiB chunks, as the finalizer's
    checksum pass does (ImageBlobStore.checksums); baseline: MD5 alone;
  - copy: the copier's streaming path, ImageBlobStore.put (bytes read through
    MD5 + SHA-256, written with boto3's managed upload) into an in-process moto S3;
    moto's own work runs on the same core, so this is a lower bound; baseline: the
    same bytes through boto3 put_object alone (no hashing, no managed upload).
Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB,
so, with R1 the one-core rate measured here:
    R(m) = R1 * min(m, 1769) / 1769                                    (MB/s)
    largest image one invocation finalizes = (timeout - margin) / (1/H(m) + 1/C(m))
the checksum pass (H) and then the copy (C) of every byte, in sequence.
"""
import hashlib
import io
import multiprocessing
import os
import statistics
import time

from bench.report import fmt, fmt_ratio, ratio, save, table

MB = 10 ** 6
MIB = 1 << 20
HASH_BYTES = int(os.environ.get('BENCH_SIZING_HASH_MIB', '256')) * MIB
COPY_BYTES = int(os.environ.get('BENCH_SIZING_COPY_MIB', '64')) * MIB
REPS = int(os.environ.get('BENCH_SIZING_REPS', '3'))
FULL_VCPU_MB = 1769
MARGIN_S = 60     # kept for the catalog writes and the record after the data pass
# memory sizes shown, and the settings of .chalice/config.json they justify
MEMORY_SIZES = (128, 512, 1024, 1769, 3008)
TIMEOUT_S = 900   # Lambda's ceiling, the finalizer's and the copier's timeout


def rate_at(one_core_mb_s, memory_mb):
    """MB/s at `memory_mb`, from the rate of one full core."""
    return one_core_mb_s * min(memory_mb, FULL_VCPU_MB) / FULL_VCPU_MB


def largest_image_bytes(hash_mb_s, copy_mb_s, timeout_s=TIMEOUT_S, margin_s=MARGIN_S):
    """Bytes one invocation can checksum and then copy within its timeout."""
    return int((timeout_s - margin_s) * MB / (1 / hash_mb_s + 1 / copy_mb_s))


def _hash_rate(size, md5_only=False):
    chunk = os.urandom(MIB)
    started = time.perf_counter()
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    for _ in range(size // MIB):
        md5.update(chunk)
        if not md5_only:
            sha256.update(chunk)
    return size / MB / (time.perf_counter() - started)


def _copy_rate(size, hashed=True):
    import boto3
    from moto import mock_aws

    os.environ.update(AWS_DEFAULT_REGION='us-east-1', AWS_ACCESS_KEY_ID='bench',
                      AWS_SECRET_ACCESS_KEY='bench', GLANCE_IMAGE_BUCKET='bench-sizing')
    from chalicelib.storage.blobs import ImageBlobStore
    data = os.urandom(size)
    with mock_aws():
        boto3.client('s3', region_name='us-east-1').create_bucket(Bucket='bench-sizing')
        store = ImageBlobStore()
        started = time.perf_counter()
        if hashed:
            blob = store.put('bench', io.BytesIO(data), size)
            assert blob.size == size
        else:
            store.client.put_object(Bucket='bench-sizing', Key='raw', Body=data)
        return size / MB / (time.perf_counter() - started)


def _pinned(task, *args):
    """Run task(*args) REPS times in a child process bound to one CPU: the median."""
    def child(queue):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        queue.put([task(*args) for _ in range(REPS)])
    queue = multiprocessing.get_context('fork').Queue()
    process = multiprocessing.get_context('fork').Process(target=child, args=(queue,))
    process.start()
    rates = queue.get(timeout=600)
    process.join()
    return statistics.median(rates)


def measure():
    return {'hash_mb_s': _pinned(_hash_rate, HASH_BYTES),
            'md5_mb_s': _pinned(_hash_rate, HASH_BYTES, True),
            'copy_mb_s': _pinned(_copy_rate, COPY_BYTES),
            'raw_put_mb_s': _pinned(_copy_rate, COPY_BYTES, False)}


def main():
    figures = measure()
    hash_1, copy_1 = figures['hash_mb_s'], figures['copy_mb_s']
    table('One core of this machine, MB/s (median of %d)' % REPS,
          ['work', 'ours', 'baseline', 'ratio', 'baseline is'], [
              ['hash (MD5 + SHA-256)', fmt(hash_1, 0), fmt(figures['md5_mb_s'], 0),
               fmt_ratio(ratio(hash_1, figures['md5_mb_s'])), 'MD5 alone'],
              ['copy (hashed, managed upload)', fmt(copy_1, 0),
               fmt(figures['raw_put_mb_s'], 0),
               fmt_ratio(ratio(copy_1, figures['raw_put_mb_s'])), 'put_object alone'],
          ])
    rows, sizing = [], {}
    for memory in MEMORY_SIZES:
        hashed, copied = rate_at(hash_1, memory), rate_at(copy_1, memory)
        largest = largest_image_bytes(hashed, copied)
        sizing[memory] = {'hash_mb_s': hashed, 'copy_mb_s': copied, 'largest_bytes': largest}
        rows.append([fmt(memory), fmt(hashed, 0), fmt(copied, 0),
                     fmt(largest / (1 << 30), 1)])
    table('Per Lambda memory size: R(m) = R1 * min(m, %d) / %d; largest image = '
          '(%d s - %d s) / (1/H + 1/C)' % (FULL_VCPU_MB, FULL_VCPU_MB, TIMEOUT_S, MARGIN_S),
          ['memory, MB', 'hash, MB/s', 'copy, MB/s', 'largest image, GiB'], rows)
    figures['per_memory'] = sizing
    save('sizing', figures)
    return figures


if __name__ == '__main__':
    main()
