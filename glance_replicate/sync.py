"""What differs between a source image and its copy, and the copy of one image.

The target's own records are the state: an image missing there is created (same id),
one whose metadata or members differ is updated, a queued one gets its bytes (resuming
a reservation left half done), a saving one is waited for. Nothing else is written.
"""
import json
import time

from glance_upload.api import ApiError

from glance_upload.cli import Stopped
from glance_replicate.transfer import TransferError, copy_bytes, new_counts

UPDATABLE = ('name', 'disk_format', 'container_format', 'min_disk', 'min_ram', 'protected',
             'is_public', 'owner')
GONE = ('deleted', 'pending_delete')
ATTEMPTS = 3


def not_copyable(image, only_active):
    """Why a source image is skipped, or None. Active images are copied with their
    bytes, queued ones as metadata (v1 creates them queued); v1 cannot create the
    other statuses (saving, killed, deactivated, pending_delete, uploading, importing)."""
    status = image['status']
    if status == 'active' or (status == 'queued' and not only_active):
        return None
    if status == 'queued':
        return 'queued on the source (--only-active)'
    return '%s on the source: not copied (v1 cannot create an image in that status)' % status


def _owner(value):
    return value or None  # no owner: null in v1 JSON, absent in v1 headers


def differences(source, target, source_members, target_members):
    """[{'field', 'source', 'target'}]: every difference the copy has to remove."""
    if target is None:
        return [{'field': 'image', 'source': source['status'], 'target': None}]
    found = []

    def differ(field, mine, theirs):
        if mine != theirs:
            found.append({'field': field, 'source': mine, 'target': theirs})
    for field in UPDATABLE:
        if field == 'owner':
            differ(field, _owner(source[field]), _owner(target[field]))
        else:
            differ(field, source[field], target[field])
    differ('properties', source['properties'], target['properties'])
    differ('status', source['status'], target['status'])
    if source['status'] == 'active':
        differ('size', source['size'], target['size'])
        differ('checksum', source['checksum'], target['checksum'])
    differ('members', source_members, target_members)
    return found


def meta_headers(image, fields):
    headers = {}
    for field in fields:
        value = image[field]
        if field == 'owner':
            value = value or ''
        elif value is None:
            continue  # v1 cannot unset a field
        elif isinstance(value, bool):
            value = 'true' if value else 'false'
        headers['x-image-meta-' + field] = str(value)
    return headers


def property_headers(properties):
    return {'x-image-meta-property-' + name: value for name, value in properties.items()}


class Context:
    """What every image copy shares: both sides, the options, the stop flag."""

    def __init__(self, source, target, options, stop, budget, progress):
        self.source, self.target = source, target  # catalogs (target: v1)
        self.options, self.stop, self.budget = options, stop, budget
        self.progress = progress  # image -> a progress bar (update, close)


def compare_image(context, image):
    """-> (source members, target record, target members, differences)."""
    source_members = context.source.members(image['id'])
    target = context.target.image(image['id'])
    target_members = context.target.members(image['id']) \
        if target is not None and target['status'] not in GONE else []
    return source_members, target, target_members, \
        differences(image, target, source_members, target_members)


def copy_image(context, image, outcome):
    """Makes the target's copy of one source image agree with it, noting what it did in
    `outcome` ({'id', 'name', 'owner', 'actions', 'error', 'bytes', ...})."""
    source_members, target, target_members, found = compare_image(context, image)
    fields = {difference['field'] for difference in found}
    if not found:
        return outcome
    api = context.target.api
    dry_run = context.options.dry_run
    if target is not None and target['status'] in GONE:
        outcome['error'] = ('the image is %s on the target: its id cannot be used again'
                            % target['status'])
        return outcome
    created = target is None
    if created:
        outcome['actions'].append('create')
        if not dry_run:
            headers = meta_headers(image, ('id',) + UPDATABLE)
            if image['status'] == 'active':
                headers.update(meta_headers(image, ('size', 'checksum')))
            headers.update(property_headers(image['properties']))
            api.call('POST', '/images', (201,), headers=headers)
            target = context.target.image(image['id'])
    else:
        changed = [field for field in UPDATABLE if field in fields]
        if changed or 'properties' in fields:
            outcome['actions'].append('metadata')
            if not dry_run:
                headers = meta_headers(image, changed)
                if 'properties' in fields:  # the set given replaces the target's
                    headers.update(property_headers(image['properties']))
                else:
                    headers['x-glance-registry-purge-props'] = 'false'
                api.call('PUT', '/images/%s' % image['id'], (200,), headers=headers)
    if 'members' in fields or (created and source_members):
        outcome['actions'].append('members')
        if not dry_run:
            api.call('PUT', '/images/%s/members' % image['id'], (204,),
                     data=json.dumps({'memberships': source_members}),
                     headers={'Content-Type': 'application/json'})
    if image['status'] != 'active' or (target or {}).get('status') == image['status']:
        _check_data(outcome, image, target)
        return outcome
    if dry_run:
        outcome['actions'].append('bytes')
        return outcome
    _copy_data(context, image, target, outcome)
    return outcome


def _copy_data(context, image, target, outcome):
    status = target['status']
    if status in ('queued', 'saving'):
        outcome['actions'].append('bytes')
        if status == 'queued' and image['size'] == 0:
            outcome['error'] = 'the source is active with no bytes; the target stays queued'
            return
        bar, counts = context.progress(image), new_counts(image, context.options)
        try:
            record, problems = copy_bytes(
                context.source, context.target.api, image, context.options, bar.update,
                context.stop, context.budget, counts)
        finally:  # an interrupted copy is counted too
            bar.close()
            outcome.update(bytes=image['size'], path=counts['path'],
                           parts_uploaded=counts['parts_uploaded'],
                           parts_skipped=counts['parts_skipped'])
            if counts['resumed']:
                outcome['actions'].append('resumed')
        target = record
        if problems:
            outcome['error'] = '%s; the target image is %s' % ('; '.join(problems),
                                                               target['status'])
            return
    _check_data(outcome, image, target)


def _check_data(outcome, image, target):
    if outcome['error'] or target is None or image['status'] != 'active':
        return
    if target['status'] != 'active':
        outcome['error'] = ('the target image is %s, the source active%s'
                            % (target['status'], ' (the target refused the bytes: size or '
                               'checksum mismatch)' if target['status'] == 'killed' else ''))
    elif (target.get('size'), target.get('checksum')) != (image['size'], image['checksum']):
        outcome['error'] = ('the target holds other bytes (size %s, checksum %s; the source '
                            '%s, %s); an active image cannot be uploaded again'
                            % (target.get('size'), target.get('checksum'), image['size'],
                               image['checksum']))


def run_copy(context, image):
    """copy_image, tried again after a network or server error (each try starts from
    what the target holds); any other failure of this one image goes in its outcome."""
    outcome = {'id': image['id'], 'name': image['name'], 'owner': image['owner'],
               'actions': [], 'error': None, 'bytes': 0}
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return copy_image(context, image, outcome)
        except Stopped as stop:
            outcome['stopped'] = str(stop)  # not a failure: a rerun resumes it
            return outcome
        except (ApiError, TransferError, OSError) as error:  # requests' errors: OSErrors
            transient = not isinstance(error, ApiError) or error.status >= 500
            if not transient or attempt == ATTEMPTS or context.stop.is_set():
                outcome['error'] = str(error)
                return outcome
            time.sleep(attempt)
