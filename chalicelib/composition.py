"""The composition root: every service built from one Settings value, for the routes
(api/), the event handlers (events.py) and the local runtime alike.

The stores bind their tables when built; the services receive the settings. When the
settings in force change (a test's override), the next call builds the services anew
for them, on the same stores unless the stores' own settings changed; the background
runner is kept.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from chalicelib.background import BackgroundRunner, Event
from chalicelib.config import Settings, settings
from chalicelib.domain.copies import CACHE_IMAGE, Copier, CopyFrom, \
    ExternalSources, LocationCache
from chalicelib.domain.finalizer import UploadFinalizer
from chalicelib.domain.images import ImageService
from chalicelib.domain.members import MemberService
from chalicelib.domain.policy import Policy
from chalicelib.domain.ports import BlobStore, ImageRecord, ImageStore, MemberStore, \
    SourceReader
from chalicelib.domain.records import ImageRecords
from chalicelib.domain.steps import StepBudget
from chalicelib.domain.transfers import Transfers
from chalicelib.domain.uploads import UploadService


@dataclasses.dataclass
class Services:
    settings: Settings
    catalog: ImageStore
    memberships: MemberStore
    blobs: BlobStore
    sources: SourceReader
    background: BackgroundRunner
    images: ImageService
    members: MemberService
    uploads: UploadService
    finalizer: UploadFinalizer
    copy_from: CopyFrom
    location_cache: LocationCache


# what the stores are bound to when built
STORE_SETTINGS = ('region', 'aws_endpoint_url', 'images_table', 'members_table',
                  'image_bucket')


def build(current: Settings, background: BackgroundRunner,
          previous: Services | None = None) -> Services:
    """The AWS adapters (DynamoDB, S3, HTTP sources) and the services on them; the
    adapters of `previous` when they are bound alike."""
    if previous is not None and all(getattr(previous.settings, name) == getattr(current, name)
                                    for name in STORE_SETTINGS):
        return assemble(current, previous.catalog, previous.memberships, previous.blobs,
                        previous.sources, background)
    from chalicelib.storage.blobs import ImageBlobStore, s3_client
    from chalicelib.storage.catalog import ImageCatalog
    from chalicelib.storage.memberships import ImageMemberships
    from chalicelib.storage.sources import ExternalSources as SourceAdapter
    return assemble(current, ImageCatalog(current), ImageMemberships(current),
                    ImageBlobStore(), SourceAdapter(s3_client), background)


def assemble(current: Settings, catalog: ImageStore, memberships: MemberStore,
             blobs: BlobStore, sources: SourceReader, background: Any) -> Services:
    """The services on any stores (the in-memory ones in tests/domain)."""
    policy = Policy.from_file(current.policy_file)
    records = ImageRecords(catalog, memberships, current)
    copier = Copier(records, blobs, sources, background, current)
    images = ImageService(records, blobs, policy, current,
                          Transfers(records, blobs, sources, policy, current),
                          ExternalSources(records, sources, background, current))
    return Services(
        settings=current, catalog=catalog, memberships=memberships, blobs=blobs,
        sources=sources, background=background, images=images,
        members=MemberService(records, policy, current),
        uploads=UploadService(records, blobs, policy, current),
        finalizer=UploadFinalizer(records, blobs, background, current),
        copy_from=CopyFrom(records, copier), location_cache=LocationCache(records, copier))


_built: list[Services] = []


def services() -> Services:
    """The services for the settings in force, built on first use (importing the app
    costs no AWS set-up)."""
    current = settings()
    if not _built or _built[0].settings is not current:
        _built[:] = [build(current, _runner, _built[0] if _built else None)]
    return _built[0]


def reset() -> None:
    """Forget the services (tests: a fresh moto world gets fresh clients)."""
    _built.clear()


def run_job(job: str, image_id: str, url: str | None = None, offset: int = 0,
            budget: StepBudget | None = None) -> ImageRecord | None:
    """Run a background job, or one step of it; a failure propagates, so that Lambda
    delivers the event again."""
    built = services()
    if job == 'finalize':
        return built.finalizer.finalize_step(image_id, offset, budget)
    copy: CopyFrom | LocationCache = built.location_cache if job == CACHE_IMAGE else \
        built.copy_from
    return copy.run(image_id, url or '', offset, budget)


def run_event(event: Event, budget: StepBudget | None = None) -> ImageRecord | None:
    """An event of the background runner: {"job", "image_id", "url", "offset"}."""
    return run_job(event['job'], event['image_id'], event.get('url'),
                   event.get('offset', 0), budget)


def step_budget(context: Any) -> StepBudget:
    """The budget of one step in a Lambda invocation (its context), or outside one."""
    current = settings()
    return StepBudget.of_invocation(context, current.step_bytes, current.step_reserve_seconds)


_runner = BackgroundRunner(run_event)
