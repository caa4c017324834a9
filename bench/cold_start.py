"""Cold start: a fresh `import app` against importing chalice, boto3 and pynamodb
alone (the baseline), median of repeated runs; and the Lambda package's size
against the part of it that is only its dependencies.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

from bench.report import PROJECT_DIR, fmt, fmt_ratio, ratio, save, table

RUNS = 9
ENV = dict(os.environ, AWS_DEFAULT_REGION='us-east-1', GLANCE_AUTH_MODE='noauth',
           PYTHONDONTWRITEBYTECODE='1')
OWN_CODE = ('app.py', 'chalicelib/')


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


def package_sizes(stage='prod'):
    """(bytes of deployment.zip, compressed bytes of its entries that are not our code)."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'package',
                        '--stage', stage, out], cwd=PROJECT_DIR, env=ENV, check=True,
                       capture_output=True)
        path = os.path.join(out, 'deployment.zip')
        with zipfile.ZipFile(path) as package:
            dependencies = sum(entry.compress_size for entry in package.infolist()
                               if not entry.filename.startswith(OWN_CODE))
        return os.path.getsize(path), dependencies


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
    save('cold', figures)
    return figures


if __name__ == '__main__':
    main()
