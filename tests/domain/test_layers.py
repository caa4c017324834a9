"""The domain knows no HTTP, no AWS and no environment: it imports none of chalice,
boto3, botocore, pynamodb, urllib3 or chalicelib.config (the services receive their
settings from the composition root), nor the api and storage layers."""
import ast
import pathlib

DOMAIN = pathlib.Path(__file__).resolve().parents[2] / 'chalicelib' / 'domain'
FORBIDDEN = ('chalice', 'boto3', 'botocore', 'pynamodb', 'urllib3', 'chalicelib.config',
             'chalicelib.api', 'chalicelib.storage', 'chalicelib.composition',
             'chalicelib.background')


def imports_of(path):
    """(line, module) of every import in a module, at any depth (a function's too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module


def forbidden_imports(directory=DOMAIN):
    return ['%s:%d imports %s' % (path.name, line, module)
            for path in sorted(directory.glob('*.py')) for line, module in imports_of(path)
            if any(module == name or module.startswith(name + '.') for name in FORBIDDEN)]


def test_the_domain_imports_no_framework_no_aws_and_no_settings_module():
    assert len(list(DOMAIN.glob('*.py'))) > 10   # the walk does find the domain
    assert forbidden_imports() == []


def test_the_check_finds_a_forbidden_import_at_any_depth(tmp_path):
    (tmp_path / 'leaky.py').write_text('import json\n\n\ndef f():\n    import boto3.session\n'
                                       'from chalicelib.config import settings\n')
    assert sorted(forbidden_imports(tmp_path)) == ['leaky.py:5 imports boto3.session',
                                                   'leaky.py:6 imports chalicelib.config']
