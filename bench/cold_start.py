"""Cold start: a fresh `import app` against importing chalice, boto3 and pynamodb
alone (the baseline), median of repeated runs; and the Lambda package's size
against the part of it that is only its dependencies.

Then botocore bundled or not: the package as `make package` builds it (PynamoDB
vendored without its dependencies, infra/vendor.py) against the same package with what
PynamoDB's dependencies would bring (botocore and its own, taken from this virtualenv),
and that bundled one without anything the Lambda Python runtime already has
(RUNTIME_PROVIDED): zip size, the time to extract it (Lambda fetches and unpacks the
code at a cold start), and `import app` from the extracted package, the runtime's
copies standing in for the missing ones.
"""
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile

from bench.report import PROJECT_DIR, fmt, fmt_ratio, ratio, save, table

RUNS = 9
ENV = dict(os.environ, AWS_DEFAULT_REGION='us-east-1', GLANCE_AUTH_MODE='noauth',
           PYTHONDONTWRITEBYTECODE='1')
OWN_CODE = ('app.py', 'chalicelib/')
# in the Lambda Python runtime already: boto3, botocore and botocore's dependencies
RUNTIME_PROVIDED = ('boto3', 'botocore', 's3transfer', 'jmespath', 'dateutil', 'urllib3',
                    'six', 'python_dateutil')
# what installing PynamoDB with its dependencies adds: botocore and botocore's own
PYNAMODB_DEPENDENCIES = ('botocore', 'jmespath', 'dateutil', 'urllib3', 'six.py')


def import_seconds(statement):
    started = time.perf_counter()
    subprocess.run([sys.executable, '-c', statement], cwd=PROJECT_DIR, env=ENV, check=True)
    return time.perf_counter() - started


def median_import_seconds(*statements):
    """Median wall time of each statement in a fresh interpreter; the statements take
    turns, so that a busy moment of the machine falls on both alike."""
    times = {statement: [] for statement in statements}
    for _ in range(RUNS):
        for statement in statements:
            times[statement].append(import_seconds(statement))
    return [statistics.median(times[statement]) for statement in statements]


def _package(stage, out):
    """The stage's package as `make package` builds it (PynamoDB vendored first)."""
    subprocess.run([sys.executable, os.path.join('infra', 'vendor.py')], cwd=PROJECT_DIR,
                   check=True, capture_output=True)
    subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'package',
                    '--stage', stage, out], cwd=PROJECT_DIR, env=ENV, check=True,
                   capture_output=True)


def package_sizes(stage='prod'):
    """(bytes of deployment.zip, compressed bytes of its entries that are not our code)."""
    with tempfile.TemporaryDirectory() as out:
        _package(stage, out)
        path = os.path.join(out, 'deployment.zip')
        with zipfile.ZipFile(path) as package:
            dependencies = sum(entry.compress_size for entry in package.infolist()
                               if not entry.filename.startswith(OWN_CODE))
        return os.path.getsize(path), dependencies


def _runtime_provided(name):
    top = name.split('/', 1)[0]
    top = top[:-3] if top.endswith('.py') else top.split('-', 1)[0]
    return top in RUNTIME_PROVIDED


def bundled_copy(path, out):
    """`path` with PynamoDB's dependencies added from this virtualenv, as chalice would
    package them from requirements.txt."""
    shutil.copy(path, out)
    site = sysconfig.get_paths()['purelib']
    with zipfile.ZipFile(out, 'a', zipfile.ZIP_DEFLATED) as bundled:
        for top in PYNAMODB_DEPENDENCIES:
            found = os.path.join(site, top)
            files = [found] if os.path.isfile(found) else [
                os.path.join(root, name) for root, _, names in os.walk(found)
                for name in names if not name.endswith('.pyc')]
            for name in files:
                bundled.write(name, os.path.relpath(name, site))
    return out


def lean_copy(path, out):
    """`path` without the entries the runtime provides."""
    with zipfile.ZipFile(path) as bundled, zipfile.ZipFile(out, 'w') as lean:
        for entry in bundled.infolist():
            if not _runtime_provided(entry.filename):
                lean.writestr(entry, bundled.read(entry))
    return out


def cold_figures(path, runtime_path):
    """(seconds to extract, median seconds of `import app` from the extracted package)."""
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        with zipfile.ZipFile(path) as package:
            package.extractall(root)
        extract = time.perf_counter() - started
        env = dict(ENV, PYTHONPATH=os.pathsep.join([root, runtime_path]))
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            subprocess.run([sys.executable, '-S', '-c', 'import app'], cwd=root, env=env,
                           check=True)
            times.append(time.perf_counter() - started)
        return extract, statistics.median(times)


def bundled_or_not(stage='prod'):
    with tempfile.TemporaryDirectory() as out:
        _package(stage, out)
        bundled = bundled_copy(os.path.join(out, 'deployment.zip'),
                               os.path.join(out, 'bundled.zip'))
        lean = lean_copy(bundled, os.path.join(out, 'lean.zip'))
        runtime = sysconfig.get_paths()['purelib']   # stands in for /var/runtime
        figures = {}
        for name, path in (('bundled', bundled), ('not_bundled', lean)):
            with zipfile.ZipFile(path) as package:
                files = len(package.infolist())
            extract, imported = cold_figures(path, runtime)
            figures[name] = {'zip_bytes': os.path.getsize(path), 'files': files,
                             'extract_s': extract, 'import_app_s': imported}
        return figures


def main():
    baseline, app = median_import_seconds('import chalice, boto3, pynamodb', 'import app')
    package, dependencies = package_sizes()
    import_ratio, package_ratio = ratio(app, baseline), ratio(package, dependencies)
    mib = 1 << 20
    table('Cold start (median of %d fresh interpreters each, taking turns) and Lambda '
          'package' % RUNS,
          ['figure', 'ours', 'baseline', 'ratio', 'baseline is'], [
              ['import time, s', fmt(app, 3), fmt(baseline, 3), fmt_ratio(import_ratio),
               'python -c "import chalice, boto3, pynamodb"'],
              ['Lambda package (chalice package, prod), MiB', fmt(package / mib),
               fmt(dependencies / mib), fmt_ratio(package_ratio),
               'its dependencies alone (entries not app.py, chalicelib/)'],
          ], notes=['ours: python -c "import app" (+%.3f s over the baseline)'
                    % (app - baseline)])
    figures = {'import_app_s': app, 'import_baseline_s': baseline, 'import_ratio': import_ratio,
               'package_bytes': package, 'package_dependencies_bytes': dependencies,
               'package_ratio': package_ratio, 'runs': RUNS}
    choice = bundled_or_not()
    rows = [[name.replace('_', ' '), fmt(f['zip_bytes'] / mib), fmt(f['files']),
             fmt(f['extract_s'], 3), fmt(f['import_app_s'], 3)] for name, f in choice.items()]
    table('botocore bundled or not (chalice package, prod; import app from the extracted '
          'zip, python -S, median of %d)' % RUNS,
          ['package', 'zip, MiB', 'files', 'extract, s', 'import app, s'], rows,
          notes=['not bundled: without %s (the Lambda runtime has them)'
                 % ', '.join(RUNTIME_PROVIDED)])
    figures['botocore'] = choice
    save('cold', figures)
    return figures


if __name__ == '__main__':
    main()
