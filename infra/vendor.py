"""vendor/: the packages the Lambda package carries without their dependencies.

`chalice package` and `chalice deploy` put requirements.txt and its dependencies into
the zip, and vendor/ as it is. PynamoDB depends on botocore, which the Lambda Python
runtime already provides (with boto3): installed with its dependencies it brought
botocore's 2,000 files (17 MiB zipped) into every function, for nothing but a slower
cold start (bench/cold_start.py measures both). So requirements-vendor.txt is installed
here with --no-deps; it is done again only when that file changes.

    python infra/vendor.py        # make package / make deploy run it
"""
import hashlib
import os
import shutil
import subprocess
import sys

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(PROJECT_DIR, 'requirements-vendor.txt')
VENDOR = os.path.join(PROJECT_DIR, 'vendor')
STAMP = os.path.join(PROJECT_DIR, '.vendor.sha256')


def _wanted():
    with open(REQUIREMENTS, 'rb') as requirements:
        return hashlib.sha256(requirements.read()).hexdigest()


def vendor():
    """Install requirements-vendor.txt into vendor/ (no dependencies) if it changed."""
    wanted = _wanted()
    try:
        with open(STAMP) as stamp:
            if stamp.read() == wanted:
                return False
    except OSError:
        pass
    shutil.rmtree(VENDOR, ignore_errors=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                    '--no-compile', '--target', VENDOR, '-r', REQUIREMENTS], check=True)
    for leftover in os.listdir(VENDOR):   # pip's metadata and console scripts
        if leftover.endswith(('.dist-info', '.egg-info')) or leftover == 'bin':
            shutil.rmtree(os.path.join(VENDOR, leftover))
    with open(STAMP, 'w') as stamp:
        stamp.write(wanted)
    return True


if __name__ == '__main__':
    print('vendor/ %s' % ('installed' if vendor() else 'up to date'))
