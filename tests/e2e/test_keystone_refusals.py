"""Refusals with real tokens, and a real Keystone down, hung or answering 500.

One Keystone with a short [token] expiration, two runtimes in keystone mode on it:
the token cache on (CACHE_ON seconds) and off (0). A refused token is 401 at once with
the cache off and once the cache time has passed with it on; a Keystone that cannot
answer is 503 (never 401 to valid clients, never 500), and the service recovers by
itself when Keystone is back. Run with -s to see the table.
"""
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.keystone_cloud import keystone_cloud
from tools.keystone_local import USERS, issue_token

CACHE_ON = 6
EXPIRATION = 30            # Keystone's [token] expiration, seconds
HUNG_TIMEOUT = 40          # the service gives up on a hung Keystone after 10 s


@pytest.fixture(scope='module')
def cloud():
    with keystone_cloud(expiration=EXPIRATION, cache_times=(CACHE_ON, 0)) as (
            keystone, admin, runtimes):
        yield keystone, admin, runtimes


def _status(runtime, token):
    request = urllib.request.Request(runtime.base_url + '/v1/images',
                                     headers={'X-Auth-Token': token})
    try:
        with urllib.request.urlopen(request, timeout=HUNG_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as error:
        if error.code == 503:   # the identity outage answer, not some other 503
            body = error.read().decode()
            assert 'The identity service is unavailable; try again later.' in body, body
            assert error.headers['Retry-After'] == '5'
        return error.code


class Table:
    COLUMNS = ('case', 'cache %d s: at once' % CACHE_ON, 'after %d s' % CACHE_ON,
               'cache off: at once')

    def __init__(self):
        self.rows = []

    def add(self, case, on_at_once, on_later, off_at_once):
        self.rows.append((case, on_at_once, on_later, off_at_once))

    def __str__(self):
        widths = [max(len(str(row[i])) for row in self.rows + [self.COLUMNS])
                  for i in range(4)]
        lines = [' | '.join(str(cell).ljust(width) for cell, width in zip(row, widths))
                 for row in [self.COLUMNS] + self.rows]
        lines.insert(1, '-+-'.join('-' * width for width in widths))
        return '\n'.join(lines)


def _after_the_change(runtimes, token, change, table, case):
    """Both runtimes trust `token`, then `change` happens in Keystone."""
    on, off = runtimes
    assert (_status(on, token), _status(off, token)) == (200, 200)
    change()
    at_once, off_at_once = _status(on, token), _status(off, token)
    time.sleep(CACHE_ON + 1)
    table.add(case, at_once, _status(on, token), off_at_once)


def test_refusals_with_real_tokens(cloud):
    keystone, admin, runtimes = cloud
    on, off = runtimes
    table = Table()
    alice, password = USERS['project-a']
    expiring = issue_token(keystone.url, alice, password, project='project-a')
    expires = time.monotonic() + EXPIRATION
    assert (_status(on, expiring), _status(off, expiring)) == (200, 200)

    unscoped = issue_token(keystone.url, alice, password, unscoped=True)
    dora = admin.user('dora', 'dora-secret')
    admin.grant_on_domain(dora)
    domain_scoped = issue_token(keystone.url, 'dora', 'dora-secret', domain='Default')
    for case, token in (('unscoped', unscoped), ('domain-scoped', domain_scoped)):
        at_once, off_at_once = _status(on, token), _status(off, token)
        time.sleep(CACHE_ON + 1)
        table.add(case, at_once, _status(on, token), off_at_once)

    revoked = issue_token(keystone.url, alice, password, project='project-a')
    _after_the_change(runtimes, revoked, lambda: admin.revoke(revoked), table, 'revoked')
    erin = admin.user('erin', 'erin-secret', 'project-e')
    token = issue_token(keystone.url, 'erin', 'erin-secret', project='project-e')
    _after_the_change(runtimes, token, lambda: admin.disable_user(erin), table,
                      'disabled user')
    admin.user('frank', 'frank-secret', 'project-f')
    token = issue_token(keystone.url, 'frank', 'frank-secret', project='project-f')
    _after_the_change(runtimes, token, lambda: admin.delete_project('project-f'), table,
                      'deleted project')

    time.sleep(max(0, expires - time.monotonic()) + 1)
    table.add('expired', _status(on, expiring), _status(on, expiring), _status(off, expiring))
    print('\n' + str(table))
    assert table.rows == [
        ('unscoped', 401, 401, 401),
        ('domain-scoped', 401, 401, 401),
        ('revoked', 200, 401, 401),
        ('disabled user', 200, 401, 401),
        ('deleted project', 200, 401, 401),
        ('expired', 401, 401, 401),           # never trusted past its expiry
    ]


def _fault(keystone, runtimes, table, case, start, end):
    """A token both runtimes trusted and one they never saw, during the fault; then
    the fault ends and tokens are served again, by itself."""
    on, off = runtimes
    alice, password = USERS['project-a']
    seen = issue_token(keystone.url, alice, password, project='project-a')
    unseen = issue_token(keystone.url, alice, password, project='project-a')
    assert (_status(on, seen), _status(off, seen)) == (200, 200)
    start()
    try:
        table.add(case + ', token seen', _status(on, seen), None, _status(off, seen))
        table.add(case + ', new token', _status(on, unseen), None, _status(off, unseen))
        time.sleep(CACHE_ON + 1)
        table.rows[-2] = table.rows[-2][:2] + (_status(on, seen),) + table.rows[-2][3:]
        table.rows[-1] = table.rows[-1][:2] + (_status(on, unseen),) + table.rows[-1][3:]
    finally:
        end()
    # a new token: the old ones may have expired meanwhile (a hung Keystone takes long)
    fresh = issue_token(keystone.url, alice, password, project='project-a')
    assert [_status(runtime, fresh) for runtime in runtimes] == [200, 200]


def test_keystone_down_hung_or_failing_is_503_then_recovers(cloud):
    keystone, _, runtimes = cloud
    table = Table()
    _fault(keystone, runtimes, table, 'Keystone stopped', keystone.stop, keystone.start)
    _fault(keystone, runtimes, table, 'Keystone answering 500', keystone.break_keys,
           keystone.repair_keys)
    _fault(keystone, runtimes, table, 'Keystone hung', keystone.pause, keystone.resume)
    print('\n' + str(table))
    expected = []
    for case in ('Keystone stopped', 'Keystone answering 500', 'Keystone hung'):
        expected += [(case + ', token seen', 200, 503, 503),   # trusted while cached
                     (case + ', new token', 503, 503, 503)]
    assert table.rows == expected
    for runtime in runtimes:   # the cause is in the service's log, the password is not
        with open(runtime.log.name, encoding='utf-8', errors='replace') as output:
            log = output.read()
        assert 'identity service unavailable' in log
        assert 'unreachable (' in log and 'answered 500' in log
        assert 'glance-secret' not in log
