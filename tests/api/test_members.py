"""Image memberships (v1 §14) and visibility through membership (§15)."""
import json

import pytest

from tests.helpers import (ADMIN, JSON, body_json, create_image, delete_image, download,
                           error_text, get_header, head, listed_ids, members_path,
                           memberships_of, private_image, put_member, share, status_of,
                           tenant, update_image)

pytestmark = pytest.mark.shared_world

A = tenant('tenant-a')          # owner of most images below
B = tenant('tenant-b')
C = tenant('tenant-c')
D = tenant('tenant-d')
NO_TENANT = {'X-Identity-Status': 'Confirmed', 'X-Roles': 'member'}
DATA = b'member test bytes'
QUOTA_MESSAGE = ('The limit has been exceeded on the number of allowed image members for '
                 'this image. Attempted: %d, Maximum: %d')


# -- helpers ------------------------------------------------------------------------
def public_image(client, owner='tenant-a'):
    response, image = create_image(client, ADMIN, data=DATA, is_public='True', owner=owner)
    assert response.status_code == 201, response.body
    assert image['is_public'] is True and image['owner'] == owner
    return image


def replace_members(client, identity, image_id, body=None, raw=None):
    headers = dict(identity)
    data = raw if raw is not None else (b'' if body is None else json.dumps(body).encode())
    if data:
        headers.update(JSON)
    return client.http.put(members_path(image_id), headers=headers, body=data)


def remove_member(client, identity, image_id, member):
    return client.http.delete(members_path(image_id, member), headers=identity)


def list_members(client, identity, image_id):
    return client.http.get(members_path(image_id), headers=identity)


def members(client, image_id, identity=A):
    """The member list as `identity` sees it (asserts 200)."""
    response = list_members(client, identity, image_id)
    assert response.status_code == 200, (response.status_code, response.body)
    document = body_json(response)
    assert list(document) == ['members']
    return document['members']


def as_pairs(rows):
    return [(row['member_id'], row['can_share']) for row in rows]


def shared_images(client, identity, member, method='GET'):
    response = client.http.request(method, '/v1/shared-images/%s' % member, headers=identity)
    assert response.status_code == 200, (method, response.status_code, response.body)
    document = body_json(response)
    assert list(document) == ['shared_images']
    return sorted((row['image_id'], row['can_share']) for row in document['shared_images'])


# == GET /v1/images/{id}/members (§14.1) ===============================================
def test_list_members_in_insertion_order_for_owner_and_admin(client):
    image = private_image(client)
    assert members(client, image['id']) == []
    share(client, image['id'], 'zz-tenant')
    share(client, image['id'], 'tenant-b', can_share=True)
    share(client, image['id'], 'aa-tenant')
    share(client, image['id'], 'mm-tenant', can_share=False)
    expected = [{'member_id': 'zz-tenant', 'can_share': False},
                {'member_id': 'tenant-b', 'can_share': True},
                {'member_id': 'aa-tenant', 'can_share': False},
                {'member_id': 'mm-tenant', 'can_share': False}]
    response = list_members(client, A, image['id'])
    assert response.status_code == 200
    assert get_header(response, 'content-type').startswith('application/json')
    assert body_json(response) == {'members': expected}
    assert members(client, image['id'], ADMIN) == expected
    # updating an existing member does not move it
    share(client, image['id'], 'zz-tenant', can_share=True)
    assert as_pairs(members(client, image['id']))[0] == ('zz-tenant', True)


def test_member_sees_only_its_own_row(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c', can_share=True)
    share(client, image['id'], 'tenant-d')
    assert members(client, image['id'], B) == [{'member_id': 'tenant-b', 'can_share': False}]
    assert members(client, image['id'], C) == [{'member_id': 'tenant-c', 'can_share': True}]


def test_stranger_on_public_image_sees_no_rows(client):
    image = public_image(client)
    share(client, image['id'], 'tenant-b')
    assert members(client, image['id'], C) == []
    assert members(client, image['id'], NO_TENANT) == []   # no tenant needed to list
    assert as_pairs(members(client, image['id'], A)) == [('tenant-b', False)]


def test_list_members_of_invisible_image_is_404(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = list_members(client, C, image['id'])
    assert response.status_code == 404
    assert 'not found' in error_text(response)
    assert list_members(client, A, 'no-such-image').status_code == 404
    assert list_members(client, ADMIN, 'no-such-image').status_code == 404


def test_list_members_of_deleted_image_is_404(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    assert delete_image(client, A, image['id']).status_code == 200
    response = list_members(client, ADMIN, image['id'])
    assert response.status_code == 404
    assert 'Image with identifier %s has been deleted.' % image['id'] in error_text(response)
    assert list_members(client, A, image['id']).status_code == 404
    assert list_members(client, B, image['id']).status_code == 404


# == PUT /v1/images/{id}/members/{member} (§14.2) =====================================
def test_add_member_without_body_is_not_sharable(client):
    image = private_image(client)
    response = put_member(client, A, image['id'], 'tenant-b')
    assert response.status_code == 204
    assert response.body == b''
    assert as_pairs(members(client, image['id'])) == [('tenant-b', False)]
    assert memberships_of(image['id']) == ['tenant-b']


CAN_SHARE_VALUES = [(True, True), (1, True), ('false', True), ('yes', True), ('0', True),
                    (False, False), (0, False), ('', False), (None, False)]


def test_can_share_is_coerced_by_truthiness_on_create(client):
    image = private_image(client)
    for number, (value, _) in enumerate(CAN_SHARE_VALUES):
        response = put_member(client, A, image['id'], 'member-%d' % number,
                              {'member': {'can_share': value}})
        assert response.status_code == 204 and response.body == b'', value
    assert as_pairs(members(client, image['id'])) == [
        ('member-%d' % number, expected)
        for number, (_, expected) in enumerate(CAN_SHARE_VALUES)]


def test_can_share_is_coerced_by_truthiness_on_update(client):
    image = private_image(client)
    for value, expected in CAN_SHARE_VALUES:
        share(client, image['id'], 'tenant-b', can_share=not expected)
        response = put_member(client, A, image['id'], 'tenant-b',
                              {'member': {'can_share': value}})
        assert response.status_code == 204 and response.body == b''
        assert as_pairs(members(client, image['id'])) == [('tenant-b', expected)], value


@pytest.mark.parametrize('body', [None, {}, {'member': {}}, {'member': {'other': True}},
                                  {'can_share': False}, []])
def test_unspecified_can_share_keeps_existing_value(client, body):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    response = put_member(client, A, image['id'], 'tenant-b', body)
    assert response.status_code == 204
    assert as_pairs(members(client, image['id'])) == [('tenant-b', True)]


@pytest.mark.parametrize('body', [{}, {'member': {}}, {'can_share': True}])
def test_new_member_with_unspecified_can_share_gets_false(client, body):
    image = private_image(client)
    assert put_member(client, A, image['id'], 'tenant-b', body).status_code == 204
    assert as_pairs(members(client, image['id'])) == [('tenant-b', False)]


@pytest.mark.parametrize('raw', [b'{bad json', b'{"member": ', b'not json'])
def test_add_member_with_malformed_json_is_400(client, raw):
    image = private_image(client)
    response = put_member(client, A, image['id'], 'tenant-b', raw=raw)
    assert response.status_code == 400
    assert 'Malformed JSON in request body.' in error_text(response)
    assert memberships_of(image['id']) == []


@pytest.mark.parametrize('raw', [b'42', b'"text"', b'null', b'true'])
def test_add_member_with_json_scalar_body_is_400(client, raw):
    image = private_image(client)
    response = put_member(client, A, image['id'], 'tenant-b', raw=raw)
    assert response.status_code == 400
    assert memberships_of(image['id']) == []


def test_member_quota_on_add(client, settings_override):
    settings_override(image_member_quota=2)
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c', can_share=True)
    response = put_member(client, A, image['id'], 'tenant-d')
    assert response.status_code == 413
    assert QUOTA_MESSAGE % (3, 2) in error_text(response)
    assert memberships_of(image['id']) == ['tenant-b', 'tenant-c']


def test_member_quota_checked_before_existing_member_lookup(client, settings_override):
    settings_override(image_member_quota=2)
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c')
    response = put_member(client, A, image['id'], 'tenant-b', {'member': {'can_share': True}})
    assert response.status_code == 413
    assert QUOTA_MESSAGE % (3, 2) in error_text(response)
    assert as_pairs(members(client, image['id'])) == [('tenant-b', False), ('tenant-c', False)]
    # once below the limit the update goes through
    assert remove_member(client, A, image['id'], 'tenant-c').status_code == 204
    share(client, image['id'], 'tenant-b', can_share=True)
    assert as_pairs(members(client, image['id'])) == [('tenant-b', True)]


def test_member_quota_zero_and_unlimited(client, settings_override):
    settings_override(image_member_quota=0)
    image = private_image(client)
    response = put_member(client, A, image['id'], 'tenant-b')
    assert response.status_code == 413
    assert QUOTA_MESSAGE % (1, 0) in error_text(response)
    settings_override(image_member_quota=-1)
    for name in ('t1', 't2', 't3', 't4'):
        share(client, image['id'], name)
    assert memberships_of(image['id']) == ['t1', 't2', 't3', 't4']


def test_readded_member_without_body_is_restored(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    assert remove_member(client, A, image['id'], 'tenant-b').status_code == 204
    assert head(client, B, image['id']).status_code == 404
    share(client, image['id'], 'tenant-b')
    assert as_pairs(members(client, image['id'])) == [('tenant-b', False)]
    assert head(client, B, image['id']).status_code == 200


def test_readded_member_with_body_is_restored(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    assert remove_member(client, A, image['id'], 'tenant-b').status_code == 204
    share(client, image['id'], 'tenant-b', can_share=True)
    assert as_pairs(members(client, image['id'])) == [('tenant-b', True)]
    assert head(client, B, image['id']).status_code == 200


# == who may share (§14 preconditions) ================================================
def test_owner_and_admin_may_share(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', identity=A)
    share(client, image['id'], 'tenant-c', identity=ADMIN)
    assert as_pairs(members(client, image['id'])) == [('tenant-b', False), ('tenant-c', False)]


def test_member_with_can_share_may_add_others(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    share(client, image['id'], 'tenant-c', identity=B)
    share(client, image['id'], 'tenant-d', can_share=True, identity=B)
    assert as_pairs(members(client, image['id'])) == [
        ('tenant-b', True), ('tenant-c', False), ('tenant-d', True)]
    assert head(client, C, image['id']).status_code == 200


def test_member_without_can_share_gets_404(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=False)
    response = put_member(client, B, image['id'], 'tenant-c')
    assert response.status_code == 404
    assert 'No permission to share that image' in error_text(response)
    assert replace_members(client, B, image['id'],
                           {'memberships': [{'member_id': 'tenant-b'}]}).status_code == 404
    assert remove_member(client, B, image['id'], 'tenant-b').status_code == 404
    assert memberships_of(image['id']) == ['tenant-b']


def test_stranger_on_public_image_cannot_share(client):
    image = public_image(client)
    response = put_member(client, C, image['id'], 'tenant-c')
    assert response.status_code == 404
    assert 'No permission to share that image' in error_text(response)
    assert replace_members(client, C, image['id'], {'memberships': []}).status_code == 404
    share(client, image['id'], 'tenant-b')
    assert remove_member(client, C, image['id'], 'tenant-b').status_code == 404
    assert memberships_of(image['id']) == ['tenant-b']


def test_caller_without_tenant_gets_401(client):
    image = public_image(client)
    share(client, image['id'], 'tenant-b')
    for response in (put_member(client, NO_TENANT, image['id'], 'tenant-c'),
                     replace_members(client, NO_TENANT, image['id'], {'memberships': []}),
                     remove_member(client, NO_TENANT, image['id'], 'tenant-b')):
        assert response.status_code == 401
        assert 'No authenticated user' in error_text(response)
    # even on an image that does not exist: the tenant check comes first
    assert put_member(client, NO_TENANT, 'no-such-image', 'tenant-c').status_code == 401
    assert memberships_of(image['id']) == ['tenant-b']


def test_sharing_an_invisible_image_is_404(client):
    image = private_image(client)
    response = put_member(client, C, image['id'], 'tenant-c')
    assert response.status_code == 404
    assert 'not found' in error_text(response)
    assert put_member(client, A, 'no-such-image', 'tenant-b').status_code == 404
    assert put_member(client, ADMIN, 'no-such-image', 'tenant-b').status_code == 404
    assert replace_members(client, C, image['id'], {'memberships': []}).status_code == 404
    assert remove_member(client, C, image['id'], 'tenant-b').status_code == 404
    assert memberships_of(image['id']) == []


def test_sharing_a_deleted_image_is_404(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    assert delete_image(client, A, image['id']).status_code == 200
    assert put_member(client, A, image['id'], 'tenant-c').status_code == 404
    for response in (put_member(client, ADMIN, image['id'], 'tenant-c'),
                     replace_members(client, ADMIN, image['id'], {'memberships': []}),
                     remove_member(client, ADMIN, image['id'], 'tenant-b')):
        assert response.status_code == 404
        assert 'Image with identifier %s has been deleted.' % image['id'] in \
            error_text(response)
    assert memberships_of(image['id']) == []


# == PUT /v1/images/{id}/members (replace all, §14.3) =================================
def test_replace_all_memberships(client):
    image = private_image(client)
    share(client, image['id'], 'keep-true', can_share=True)
    share(client, image['id'], 'keep-false')
    share(client, image['id'], 'flip', can_share=True)
    share(client, image['id'], 'drop')
    response = replace_members(client, A, image['id'], {'memberships': [
        {'member_id': 'keep-true'},
        {'member_id': 'keep-false'},
        {'member_id': 'flip', 'can_share': False},
        {'member_id': 'new-shared', 'can_share': True},
        {'member_id': 'new-plain'},
    ]})
    assert response.status_code == 204
    assert response.body == b''
    assert sorted(as_pairs(members(client, image['id']))) == sorted([
        ('keep-true', True), ('keep-false', False), ('flip', False),
        ('new-shared', True), ('new-plain', False)])
    assert memberships_of(image['id']) == sorted(
        ['keep-true', 'keep-false', 'flip', 'new-shared', 'new-plain'])


def test_replace_all_removes_access_of_unlisted_members(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    assert replace_members(client, A, image['id'],
                           {'memberships': [{'member_id': 'tenant-c'}]}).status_code == 204
    assert head(client, B, image['id']).status_code == 404
    assert head(client, C, image['id']).status_code == 200


def test_replace_all_with_empty_list_removes_all(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c', can_share=True)
    response = replace_members(client, ADMIN, image['id'], {'memberships': []})
    assert response.status_code == 204
    assert members(client, image['id']) == []
    assert memberships_of(image['id']) == []


def test_replace_all_by_member_with_can_share(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    response = replace_members(client, B, image['id'], {'memberships': [
        {'member_id': 'tenant-b'}, {'member_id': 'tenant-c'}]})
    assert response.status_code == 204
    assert sorted(as_pairs(members(client, image['id']))) == [
        ('tenant-b', True), ('tenant-c', False)]


@pytest.mark.parametrize('entry', [{}, {'can_share': True}, {'member': 'tenant-b'}])
def test_replace_all_entry_without_member_id_is_400(client, entry):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = replace_members(client, A, image['id'], {'memberships': [
        {'member_id': 'tenant-c'}, entry]})
    assert response.status_code == 400
    assert 'member_id' in error_text(response)
    assert memberships_of(image['id']) == ['tenant-b']


def test_replace_all_body_without_memberships_key_is_one_entry(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = replace_members(client, A, image['id'], {'member_id': 't1'})
    assert response.status_code == 204
    assert as_pairs(members(client, image['id'])) == [('t1', False)]
    response = replace_members(client, A, image['id'], {'member_id': 't2', 'can_share': True})
    assert response.status_code == 204
    assert as_pairs(members(client, image['id'])) == [('t2', True)]


def test_replace_all_body_without_memberships_or_member_id_is_400(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = replace_members(client, A, image['id'], {'foo': 1})
    assert response.status_code == 400
    assert 'member_id' in error_text(response)
    assert memberships_of(image['id']) == ['tenant-b']


def test_replace_all_without_body_is_400(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = replace_members(client, A, image['id'])
    assert response.status_code == 400
    assert memberships_of(image['id']) == ['tenant-b']


@pytest.mark.parametrize('raw', [b'{bad json', b'42', b'"x"'])
def test_replace_all_with_bad_json_is_400(client, raw):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = replace_members(client, A, image['id'], raw=raw)
    assert response.status_code == 400
    assert memberships_of(image['id']) == ['tenant-b']


def test_replace_all_over_quota_is_413_and_changes_nothing(client, settings_override):
    settings_override(image_member_quota=2)
    image = private_image(client)
    share(client, image['id'], 'tenant-b', can_share=True)
    response = replace_members(client, A, image['id'], {'memberships': [
        {'member_id': 't1'}, {'member_id': 't2'}, {'member_id': 't3'}]})
    assert response.status_code == 413
    assert QUOTA_MESSAGE % (3, 2) in error_text(response)
    assert as_pairs(members(client, image['id'])) == [('tenant-b', True)]
    # exactly at the quota is fine
    assert replace_members(client, A, image['id'], {'memberships': [
        {'member_id': 't1'}, {'member_id': 't2'}]}).status_code == 204
    assert memberships_of(image['id']) == ['t1', 't2']


# == DELETE /v1/images/{id}/members/{member} (§14.4) ==================================
def test_remove_member(client):
    image = private_image(client, data=DATA)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c')
    assert head(client, B, image['id']).status_code == 200
    response = remove_member(client, A, image['id'], 'tenant-b')
    assert response.status_code == 204
    assert response.body == b''
    assert memberships_of(image['id']) == ['tenant-c']
    assert head(client, B, image['id']).status_code == 404
    assert download(client, B, image['id']).status_code == 404
    again = remove_member(client, A, image['id'], 'tenant-b')
    assert again.status_code == 404
    assert 'Membership could not be found.' in error_text(again)
    never = remove_member(client, ADMIN, image['id'], 'never-member')
    assert never.status_code == 404
    assert 'Membership could not be found.' in error_text(never)


def test_removed_member_keeps_seeing_a_public_image(client):
    image = public_image(client)
    share(client, image['id'], 'tenant-b')
    assert remove_member(client, A, image['id'], 'tenant-b').status_code == 204
    assert head(client, B, image['id']).status_code == 200
    assert members(client, image['id']) == []


# == 405s (§3) ========================================================================
def test_get_single_membership_is_405_without_allow(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    response = client.http.get(members_path(image['id'], 'tenant-b'), headers=A)
    assert response.status_code == 405
    assert get_header(response, 'allow') is None


def test_post_members_is_405(client):
    image = private_image(client)
    response = client.http.post(members_path(image['id']), headers=A)
    assert response.status_code == 405
    assert get_header(response, 'allow') == 'GET, PUT'
    response = client.http.delete(members_path(image['id']), headers=A)
    assert response.status_code == 405
    assert get_header(response, 'allow') == 'GET, PUT'


def test_post_single_membership_is_405(client):
    image = private_image(client)
    response = client.http.post(members_path(image['id'], 'tenant-b'), headers=A)
    assert response.status_code == 405
    assert get_header(response, 'allow') == 'GET, PUT, DELETE'
    assert memberships_of(image['id']) == []


# == /v1/shared-images/{member} (§14.5) ===============================================
def _two_owners_sharing_with_m(client):
    first = private_image(client, A)
    second = private_image(client, C)
    third = private_image(client, A)
    share(client, first['id'], 'tenant-m', can_share=True, identity=A)
    share(client, second['id'], 'tenant-m', identity=C)
    share(client, third['id'], 'tenant-other', identity=A)
    return first, second


def test_shared_images_admin_and_member_see_all(client):
    first, second = _two_owners_sharing_with_m(client)
    expected = sorted([(first['id'], True), (second['id'], False)])
    assert shared_images(client, ADMIN, 'tenant-m') == expected
    assert shared_images(client, tenant('tenant-m'), 'tenant-m') == expected


def test_shared_images_other_tenants_see_their_own_images_only(client):
    first, second = _two_owners_sharing_with_m(client)
    assert shared_images(client, A, 'tenant-m') == [(first['id'], True)]
    assert shared_images(client, C, 'tenant-m') == [(second['id'], False)]
    assert shared_images(client, D, 'tenant-m') == []
    assert shared_images(client, NO_TENANT, 'tenant-m') == []


def test_shared_images_answers_any_method(client):
    first, second = _two_owners_sharing_with_m(client)
    for method in ('GET', 'POST', 'PUT', 'DELETE', 'PATCH'):
        assert shared_images(client, tenant('tenant-m'), 'tenant-m', method) == sorted(
            [(first['id'], True), (second['id'], False)]), method
        assert shared_images(client, A, 'tenant-m', method) == [(first['id'], True)], method
    # nothing was changed by the non-GET methods
    assert memberships_of(first['id']) == ['tenant-m']
    assert memberships_of(second['id']) == ['tenant-m']


def test_shared_images_unknown_member_is_empty(client):
    _two_owners_sharing_with_m(client)
    response = client.http.get('/v1/shared-images/nobody', headers=ADMIN)
    assert response.status_code == 200
    assert body_json(response) == {'shared_images': []}


def test_shared_images_drop_memberships_of_deleted_images(client):
    first, second = _two_owners_sharing_with_m(client)
    assert delete_image(client, A, first['id']).status_code == 200
    assert shared_images(client, ADMIN, 'tenant-m') == [(second['id'], False)]
    assert shared_images(client, tenant('tenant-m'), 'tenant-m') == [(second['id'], False)]
    assert shared_images(client, A, 'tenant-m') == []


def test_shared_images_follow_removal_and_updates(client):
    image = private_image(client)
    share(client, image['id'], 'tenant-b')
    assert shared_images(client, B, 'tenant-b') == [(image['id'], False)]
    share(client, image['id'], 'tenant-b', can_share=True)
    assert shared_images(client, B, 'tenant-b') == [(image['id'], True)]
    assert remove_member(client, A, image['id'], 'tenant-b').status_code == 204
    assert shared_images(client, B, 'tenant-b') == []


# == deleting an image removes its memberships (§12) ==================================
def test_deleting_an_image_removes_its_memberships(client):
    from chalicelib.storage.models import ImageMemberModel
    image = private_image(client)
    other = private_image(client)
    share(client, image['id'], 'tenant-b')
    share(client, image['id'], 'tenant-c', can_share=True)
    share(client, other['id'], 'tenant-b')
    assert delete_image(client, A, image['id']).status_code == 200
    assert list(ImageMemberModel.query(image['id'], consistent_read=True)) == []
    assert memberships_of(other['id']) == ['tenant-b']
    assert head(client, B, image['id']).status_code == 404


def test_delayed_delete_also_removes_memberships(client, settings_override):
    settings_override(delayed_delete=True)
    image = private_image(client, data=DATA)
    share(client, image['id'], 'tenant-b')
    assert delete_image(client, A, image['id']).status_code == 200
    assert status_of(client, image['id']) == 'pending_delete'
    assert memberships_of(image['id']) == []
    assert shared_images(client, B, 'tenant-b') == []
    assert head(client, B, image['id']).status_code == 404
    assert list_members(client, A, image['id']).status_code == 404


# == visibility through membership (§15) ==============================================
def test_member_can_see_and_download_private_image(client):
    image = private_image(client, data=DATA)
    assert head(client, B, image['id']).status_code == 404
    assert download(client, B, image['id']).status_code == 404
    assert image['id'] not in listed_ids(client, B)
    share(client, image['id'], 'tenant-b')
    meta = head(client, B, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-id') == image['id']
    got = download(client, B, image['id'])
    assert got.status_code == 200 and got.body == DATA
    assert listed_ids(client, B) == [image['id']]
    assert listed_ids(client, B, detail=True) == [image['id']]
    # a third tenant still sees nothing
    assert head(client, C, image['id']).status_code == 404
    assert listed_ids(client, C) == []


def test_member_cannot_update_or_delete_the_image(client):
    image = private_image(client, data=DATA)
    share(client, image['id'], 'tenant-b', can_share=True)
    response, _ = update_image(client, B, image['id'], name='hijacked')
    assert response.status_code == 403
    response = delete_image(client, B, image['id'])
    assert response.status_code == 403
    meta = head(client, A, image['id'])
    assert meta.status_code == 200
    assert get_header(meta, 'x-image-meta-name') == 'image'
    assert get_header(meta, 'x-image-meta-status') == 'active'
