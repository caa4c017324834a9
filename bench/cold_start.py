"""Cold start: a fresh `import app` against importing chalice, boto3 and pynamodb
alone (the baseline), median of repeated runs; and the Lambda package's size."""
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = 9
ENV = dict(os.environ, AWS_DEFAULT_REGION='us-east-1', GLANCE_AUTH_MODE='noauth',
           PYTHONDONTWRITEBYTECODE='1')


def median_import_seconds(statement):
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, '-c', statement], cwd=PROJECT_DIR, env=ENV,
                       check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def package_size(stage='prod'):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([os.path.join(os.path.dirname(sys.executable), 'chalice'), 'package',
                        '--stage', stage, out], cwd=PROJECT_DIR, env=ENV, check=True,
                       capture_output=True)
        return os.path.getsize(os.path.join(out, 'deployment.zip'))


def main():
    baseline = median_import_seconds('import chalice, boto3, pynamodb')
    app = median_import_seconds('import app')
    print('Cold start (median of %d fresh interpreters)' % RUNS)
    print('%-44s %8.3f s' % ('python -c "import chalice, boto3, pynamodb"', baseline))
    print('%-44s %8.3f s  (+%.3f s)' % ('python -c "import app"', app, app - baseline))
    print('%-44s %8.1f MiB' % ('Lambda package (chalice package, prod)',
                               package_size() / (1 << 20)))
    return {'import_baseline_s': baseline, 'import_app_s': app}


if __name__ == '__main__':
    main()
