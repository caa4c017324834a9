"""The README's shell blocks run as pasted: every block marked
`<!-- readme-test: MODE -->` runs in bash, in a terminal, against the local runtime in
that mode (the only change: the runtime's free port for 9292), and must succeed."""
import os
import re
import subprocess
import tempfile

import pytest

from .support import PROJECT_DIR, LocalRuntime

RELATIVE_PATHS = ('.venv', '.venv-clients', 'glance_upload', 'glance_replicate')
MARKED_BLOCK = re.compile(r'<!-- readme-test: ([a-z-]+) -->\n```sh\n(.*?)\n```', re.DOTALL)


def readme_blocks():
    with open(os.path.join(PROJECT_DIR, 'README.md'), encoding='utf-8') as readme:
        return MARKED_BLOCK.findall(readme.read())


def test_the_readme_marks_its_sessions():
    modes = [mode for mode, _ in readme_blocks()]
    assert modes.count('noauth') >= 3 and 'trusted-headers' in modes


def _run_in_a_terminal(script, workdir):
    """bash -e in a pseudo-terminal (glance reads image data from a stdin that is
    not a terminal, as it would from a pipe)."""
    path = os.path.join(workdir, 'block.sh')
    with open(path, 'w') as block:
        block.write('set -eo pipefail\n' + script + '\n')
    return subprocess.run(['script', '-qec', 'bash %s' % path, '/dev/null'], cwd=workdir,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, COLUMNS='200'))


@pytest.mark.parametrize('mode', ['noauth', 'trusted-headers'])
def test_readme_blocks_run_as_pasted(mode):
    blocks = [code for block_mode, code in readme_blocks() if block_mode == mode]
    runtime = LocalRuntime(mode)
    runtime.start()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for name in RELATIVE_PATHS:   # as in a checkout, without writing into it
                if os.path.exists(os.path.join(PROJECT_DIR, name)):
                    os.symlink(os.path.join(PROJECT_DIR, name), os.path.join(workdir, name))
            outputs = []
            for code in blocks:
                script = code.replace('127.0.0.1:9292', '127.0.0.1:%d' % runtime.port)
                result = _run_in_a_terminal(script, workdir)
                assert result.returncode == 0, '%s\n---\n%s%s' % (code, result.stdout,
                                                                  result.stderr)
                outputs.append(result.stdout)
    finally:
        runtime.stop()
    everything = '\n'.join(outputs)
    if mode == 'noauth':
        assert 'same bytes' in everything
        assert '"name": "first"' in everything          # the listing shows the image
        assert 'status' in everything and 'active' in everything
    else:
        assert '"name": "a-private"' in everything and '404' in everything
