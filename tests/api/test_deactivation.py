"""The deactivate/reactivate actions offered under v1 (admin only)."""
import pytest

from tests.helpers import (ADMIN, action, download, error_text, head, private_image,
                           queued_image, share, status_of, tenant)

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')
B = tenant('tenant-b')
DATA = b'member test bytes'


# == actions: deactivate / reactivate ==================================================
def test_deactivate_requires_admin(client):
    image = private_image(client, data=DATA)
    for name in ('deactivate', 'reactivate'):
        response = action(client, A, image['id'], name)
        assert response.status_code == 403
    assert status_of(client, image['id']) == 'active'


def test_deactivate_and_reactivate(client):
    image = private_image(client, data=DATA)
    share(client, image['id'], 'tenant-b')
    response = action(client, ADMIN, image['id'], 'deactivate')
    assert response.status_code == 204
    assert response.body == b''
    assert status_of(client, image['id']) == 'deactivated'
    for identity in (A, B, ADMIN):
        blocked = download(client, identity, image['id'])
        assert blocked.status_code == 403
        assert 'is deactivated' in error_text(blocked)
    assert head(client, A, image['id']).status_code == 200
    # twice is fine
    assert action(client, ADMIN, image['id'], 'deactivate').status_code == 204
    assert status_of(client, image['id']) == 'deactivated'
    # a non-admin cannot reactivate it
    assert action(client, A, image['id'], 'reactivate').status_code == 403
    response = action(client, ADMIN, image['id'], 'reactivate')
    assert response.status_code == 204
    assert status_of(client, image['id']) == 'active'
    for identity in (A, B):
        got = download(client, identity, image['id'])
        assert got.status_code == 200 and got.body == DATA


def test_deactivate_queued_image_is_403(client):
    image = queued_image(client)
    response = action(client, ADMIN, image['id'], 'deactivate')
    assert response.status_code == 403
    assert "Not allowed to deactivate image in status 'queued'" in error_text(response)
    assert status_of(client, image['id']) == 'queued'


def test_actions_on_invisible_image_are_404(client):
    image = private_image(client, data=DATA)
    for name in ('deactivate', 'reactivate'):
        assert action(client, B, image['id'], name).status_code == 404
        assert action(client, ADMIN, 'no-such-image', name).status_code == 404
    assert status_of(client, image['id']) == 'active'
