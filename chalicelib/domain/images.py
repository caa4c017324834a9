"""The v1 image controller: create, update, delete, show, index, (de)activate (v1 §6
to §13). The bytes are the Transfers' (inline upload, download) and the external
sources' (copies.py); the records helper (records.py) is shared by every service."""
from __future__ import annotations

import logging
import time
import urllib.parse
import uuid
from typing import Any, Callable

from chalicelib.domain import image_meta as im
from chalicelib.domain.context import RequestContext
from chalicelib.domain.copies import ExternalSources, Source
from chalicelib.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from chalicelib.domain.listing import parse_list_params, select_page
from chalicelib.domain.policy import Policy
from chalicelib.domain.ports import (BlobStore, BlobStoreError, CatalogUnavailable,
                                     DomainSettings, ImageExists, ImageRecord)
from chalicelib.domain.records import (ImageRecords, abort_upload, bucket_location,
                                       check_count_quota, is_gone, replaced)
from chalicelib.domain.transfers import Download, ImageData, Transfers
from chalicelib.domain.visibility import can_modify

LOG = logging.getLogger(__name__)
Meta = dict[str, Any]


class ImageService:
    def __init__(self, records: ImageRecords, blobs: BlobStore, policy: Policy,
                 settings: DomainSettings, transfers: Transfers, external: ExternalSources):
        self.records, self.blobs, self.policy, self.settings = records, blobs, policy, settings
        self.catalog, self.memberships = records.catalog, records.memberships
        self.transfers, self.external = transfers, external

    # -- reading ----------------------------------------------------------------
    def show(self, context: RequestContext, image_id: str) -> ImageRecord:
        self.policy.enforce(context, 'get_image')
        return self.records.get_visible(context, image_id)

    def download(self, context: RequestContext, image_id: str) -> Download:
        return self.transfers.download(context, image_id)

    def index(self, context: RequestContext, params: dict[str, str]) -> list[ImageRecord]:
        """The page of images a listing shows (v1 §13)."""
        self.policy.enforce(context, 'get_images')
        query = parse_list_params(context, params, self.settings)
        marker_image = None
        if query.marker is not None:
            # changes-since lists deleted images: they are markers then (v1 §13.3)
            marker_image = self.records.find_visible(
                context, query.marker, deleted_too=query.changes_since is not None)
            if marker_image is None or (marker_image['deleted']
                                        and query.changes_since is None):
                raise Invalid('Invalid marker. Image could not be found.')
        return select_page(self.catalog, self.memberships, context, query, marker_image)

    # -- create -----------------------------------------------------------------
    def create(self, context: RequestContext, meta: Meta, data: ImageData | None = None,
               copy_from: str | None = None) -> ImageRecord:
        self._check_request(context, 'add_image', meta, data, copy_from)
        self._check_property_quota(len(meta.get('properties') or {}))
        source = self._external_source(context, meta, copy_from, data)
        if 'id' in meta:
            im.validate_new_id(meta['id'])
        image_id = meta.get('id') or str(uuid.uuid4())
        owner = meta.get('owner') if context.is_admin and 'owner' in meta else context.owner
        im.check_owner(owner)
        remote_size = self.external.size_of(source, meta)
        status = im.ACTIVE if data is None and source is None and meta.get('size') == 0 \
            else im.QUEUED
        image = im.new_image(image_id, meta, owner, status, im.now_string())
        im.check_record_size(image)
        if not image['size'] and remote_size:
            image['size'] = remote_size
        try:
            image = self.catalog.create(image)
        except ImageExists:
            raise Conflict('An image with identifier %s already exists' % image_id) from None
        return self._attach_data(image, meta, data, source, remote_size)

    # -- update -----------------------------------------------------------------
    def update(self, context: RequestContext, image_id: str, meta: Meta,
               data: ImageData | None = None, copy_from: str | None = None,
               purge_props: bool = True) -> ImageRecord:
        self._check_request(context, 'modify_image', meta, data, copy_from)
        image = self.records.get_visible(context, image_id)
        _check_updatable(context, image, meta)
        if data is not None:
            purge_props = False
            _check_uploadable(image)
        source = self._external_source(context, meta, copy_from, data)
        if source is not None and image['status'] != im.QUEUED:
            raise Invalid('Attempted to update Location field for an image not in '
                          'queued status.')
        new_properties = meta.get('properties') or {}
        kept = 0 if purge_props else len(set(image['properties']) - set(new_properties))
        self._check_property_quota(len(new_properties) + kept)
        if not can_modify(context, image):
            raise Forbidden('Forbidden to update image: %s' % image_id)
        remote_size = self.external.size_of(source, meta)  # no source read for others
        if not context.is_admin:
            meta.pop('owner', None)
        im.check_owner(meta.get('owner'))
        image = self.records.change(image_id, _updater(context, meta, data is not None,
                                                       purge_props))
        return self._attach_data(image, meta, data, source, remote_size)

    # -- delete -----------------------------------------------------------------
    def delete(self, context: RequestContext, image_id: str) -> ImageRecord:
        self.policy.enforce(context, 'delete_image')
        image = self.records.get_visible(context, image_id)
        stamp = im.now_string()
        doomed: dict = {}   # the record as the delete found it: its bytes are what goes
        try:
            deleted = self.records.change(image_id, self._deleter(
                context, image_id, stamp, bool(image['location']), doomed))
        except CatalogUnavailable:
            landed = self.records.landed(image_id, stamp)
            if landed is None:
                raise
            deleted = landed
        # What the delete replaced, not what was read before it: a copy that landed
        # in between is deleted too.
        self._remove_data(image_id, doomed or image)   # type: ignore[arg-type]
        try:
            self.memberships.delete_all(image_id)
        except CatalogUnavailable:
            # The image is deleted and its data gone; rows left over are never shown
            # (shared images and listings skip deleted images).
            LOG.warning('memberships of deleted image %s left over', image_id)
        return deleted

    def _deleter(self, context: RequestContext, image_id: str, stamp: str, located: bool,
                 doomed: dict) -> Callable[[ImageRecord], ImageRecord]:
        status = im.PENDING_DELETE if self.settings.delayed_delete and located else im.DELETED
        retention = self.settings.deleted_retention_days

        def mark_deleted(current_image: Any) -> ImageRecord:
            doomed.update(current_image)
            if current_image['protected']:
                raise Forbidden('Image is protected')
            if current_image['status'] == im.PENDING_DELETE:
                raise Forbidden('Forbidden to delete a pending_delete image.')
            if current_image['status'] == im.DELETED:
                raise NotFound('Image %s not found.' % image_id)
            if not can_modify(context, current_image):
                raise Forbidden('Forbidden to delete image: %s' % image_id)
            current_image.update(status=status, deleted=True, deleted_at=stamp,
                                 updated_at=stamp, pending_upload=None)
            if retention > 0:  # the table's TTL removes the record then; its id may return
                current_image['purge_at'] = int(time.time()) + retention * 86400
            return current_image
        return mark_deleted

    def _remove_data(self, image_id: str, image: ImageRecord) -> None:
        """The objects of a deleted image go; if the store refuses, the image is
        undeleted (and no TTL expires it) and the delete answers 503."""
        pending = image.get('pending_upload')
        if pending:
            abort_upload(self.blobs, pending)
        for location in filter(None, (bucket_location(image), image.get('cached_location'),
                                      pending and pending['key'])):
            try:
                self.blobs.delete(location)
            except BlobStoreError:
                if is_gone(self.blobs, location):   # deleted, only the answer was lost
                    continue
                self.records.change(image_id, lambda current_image: replaced(
                    current_image, status=image['status'], deleted=False, deleted_at=None,
                    purge_at=None))
                raise Unavailable('The image store is unavailable; '
                                  'the image was not deleted.') from None

    # -- deactivation (the v2 image actions, offered under v1) ---------------------
    def set_deactivated(self, context: RequestContext, image_id: str,
                        deactivated: bool) -> ImageRecord:
        """active -> deactivated or back; the same state again is a no-op (as v2)."""
        action = 'deactivate' if deactivated else 'reactivate'
        source, target = ((im.ACTIVE, im.DEACTIVATED) if deactivated
                          else (im.DEACTIVATED, im.ACTIVE))
        self.records.get_visible(context, image_id)
        self.policy.enforce(context, action)

        def change(current_image: ImageRecord) -> ImageRecord | None:
            if current_image['status'] == target:
                return None
            if current_image['status'] != source:
                raise Forbidden("Not allowed to %s image in status '%s'"
                                % (action, current_image['status']))
            return replaced(current_image, status=target, updated_at=im.now_string())
        return self.records.change(image_id, change)

    # -- shared checks ----------------------------------------------------------------
    def _check_request(self, context: RequestContext, rule: str, meta: Meta,
                       data: ImageData | None, copy_from: str | None) -> None:
        """What a create or an update checks first: the metadata, the size cap, the
        policies."""
        im.validate_image_meta(meta, self.settings)
        cap = self.settings.image_size_cap
        size = data.length if data is not None and data.length is not None else meta.get('size')
        if size is not None and size > cap:
            raise Invalid('Denying attempt to upload image larger than %d bytes.' % cap)
        self.policy.enforce(context, rule)
        if meta.get('is_public'):
            self.policy.enforce(context, 'publicize_image')
        if copy_from is not None:
            self.policy.enforce(context, 'copy_from')
        if data is not None or copy_from is not None:
            self.policy.enforce(context, 'upload_image')

    def _check_property_quota(self, count: int) -> None:
        check_count_quota(count, self.settings.image_property_quota, 'image properties')

    def _external_source(self, context: RequestContext, meta: Meta, copy_from: str | None,
                         data: ImageData | None) -> Source | None:
        """(kind, url) of an x-image-meta-location or copy-from source (v1 §7 step 5);
        at most one source with the body, refused before anything is stored."""
        if 'location' not in meta and copy_from is None:
            return None
        if data is not None or ('location' in meta and copy_from is not None):
            raise Invalid("It's invalid to provide multiple image sources.")
        if 'location' in meta:
            self.policy.enforce(context, 'set_image_location')
        kind = 'location' if 'location' in meta else 'copy_from'
        url = meta.get('location') if kind == 'location' else copy_from
        if not url:
            raise Invalid('External source should not be empty')
        if urllib.parse.urlsplit(url).scheme.lower() not in im.EXTERNAL_SCHEMES:
            raise Invalid("External sources are not supported: '%s'" % url)
        return kind, url

    def _attach_data(self, image: ImageRecord, meta: Meta, data: ImageData | None,
                     source: Source | None, remote_size: int | None) -> ImageRecord:
        """Step 10 of v1 §7: upload, location or copy (one at most: _external_source)."""
        if data is not None:
            return self.transfers.upload(image, data)
        if source is None:
            return image
        return self.external.attach(image, meta, source, remote_size)


def _check_updatable(context: RequestContext, image: ImageRecord, meta: Meta) -> None:
    if image['status'] == im.DELETED:
        raise Forbidden('Forbidden to update deleted image.')
    if not context.is_admin and image['status'] in (im.ACTIVE, im.DEACTIVATED):
        for field in ('size', 'checksum'):
            if field in meta and meta[field] != im.field_of(image, field):
                raise Forbidden("Forbidden to modify '%s' of %s image."
                                % (field, image['status']))
    for field in ('status', 'id'):
        if field in meta and meta[field] != image[field]:  # type: ignore[literal-required]
            raise Forbidden("Forbidden to modify '%s' of image." % field)


def _check_uploadable(image: ImageRecord) -> None:
    if image['status'] != im.QUEUED or image['pending_upload']:
        raise Conflict('Cannot upload to an unqueued image')


def _updater(context: RequestContext, meta: Meta, uploading: bool,
             purge_props: bool) -> Callable[[ImageRecord], ImageRecord]:
    """The change an update makes to the fresh record (checked again on it)."""
    new_properties = meta.get('properties') or {}

    def apply(current_image: Any) -> ImageRecord:
        _check_updatable(context, current_image, meta)
        if uploading:
            _check_uploadable(current_image)
        for field in im.UPDATABLE_FIELDS:
            if field in meta:
                current_image[field] = meta[field]
        for field in ('min_disk', 'min_ram'):
            current_image[field] = current_image[field] or 0
        current_image['is_public'] = bool(current_image['is_public'])
        current_image['protected'] = bool(current_image['protected'])
        properties = {} if purge_props else current_image['properties']
        properties.update(new_properties)
        current_image['properties'] = properties
        current_image['updated_at'] = im.now_string()
        im.check_record_size(current_image)
        return current_image
    return apply
