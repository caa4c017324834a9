"""Replicate a Glance catalog (v1 or v2 source) into this service's v1 API.

    python -m glance_replicate size SOURCE
    python -m glance_replicate copy SOURCE TARGET [--parallel N] [--only-active] [--tenant T] [--dry-run]
    python -m glance_replicate compare SOURCE TARGET [--json]

Ids, owners, metadata, properties and memberships are kept; bytes stream from the
source to the target (inline, or through the presigned upload for large images)
without touching the disk, their MD5 checked against the source's checksum. There is
no local state: the target's own records (a queued image, its upload reservation and
the parts already stored) are where a rerun resumes. A client like glance_upload:
only `requests` and `tqdm`.
"""
