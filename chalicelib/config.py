"""Every setting of the service, read from the environment in one place.

The stages in `.chalice/config.json` set these variables; the local runtime and
the tests load a stage's variables before anything reads them.
"""
import dataclasses
import os
import re
from typing import Any, Mapping

DEFAULT_DISK_FORMATS = ('ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2',
                        'vdi', 'iso', 'ploop')
DEFAULT_CONTAINER_FORMATS = ('ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker')
AUTH_MODES = ('noauth', 'trusted-headers', 'keystone')
# Modes that trust the client's own headers: for local use and tests, never deployed.
UNVERIFIED_AUTH_MODES = ('noauth', 'trusted-headers')
_SIZE_UNITS = {'': 1, 'B': 1, 'KB': 1 << 10, 'MB': 1 << 20, 'GB': 1 << 30, 'TB': 1 << 40}


@dataclasses.dataclass(frozen=True)
class Settings:
    region: str
    aws_endpoint_url: str | None
    images_table: str
    members_table: str
    image_bucket: str
    auth_mode: str
    log_level: str                   # GLANCE_LOG_LEVEL: DEBUG, INFO, WARNING...
    policy_file: str | None
    image_size_cap: int
    user_storage_quota: int          # bytes; 0 means unlimited
    image_property_quota: int        # negative means unlimited
    image_member_quota: int          # negative means unlimited
    limit_param_default: int
    api_limit_max: int
    delayed_delete: bool
    deleted_retention_days: int      # 0: deleted records stay (ids are never reused)
    disk_formats: tuple
    container_formats: tuple
    public_endpoint: str | None
    inline_upload_limit: int         # bytes a request body may carry (API Gateway/Lambda)
    inline_download_limit: int       # larger images are redirected to a presigned GET
    presign_expiry: int              # seconds a presigned URL stays valid
    upload_timeout: int              # seconds a presigned reservation may stay unfinished
    upload_part_size: int            # default multipart part size, bytes
    upload_parts_page: int           # part URLs per reservation answer (size bound)
    upload_events_queue: str         # local runtime: the SQS queue of bucket events
    copy_function: str | None        # AWS: the Lambda function that runs copy-from
    step_bytes: int                  # bytes one finalizer/copier invocation hashes at most
                                     # before the next one continues (0: time decides)
    step_reserve_seconds: float      # an invocation's seconds kept for copying and recording
    keystone_url: str | None
    keystone_username: str | None
    keystone_password: str | None
    keystone_project: str | None
    keystone_domain: str
    keystone_password_parameter: str | None  # SSM SecureString holding the password
    token_cache_seconds: int         # validated tokens are trusted at most this long
    # External sources (x-image-meta-location, x-glance-api-copy-from): deny by default.
    source_s3_buckets: tuple         # buckets an s3:// source may name (never our own)
    source_allowed_networks: tuple   # CIDRs an http(s) source may resolve into
    source_ports: tuple              # ports of public http(s) sources
    source_head_timeout: float       # total seconds for a registration's HEAD
    source_deadline: float           # total seconds for streaming one source (plus at most
                                     # one 10 s socket read: under Lambda's 60 s)
    source_min_rate: int             # bytes/s below which a source stream is dropped


def parse_size(value: str) -> int:
    """Glance's `user_storage_quota` syntax: `<int>[B|KB|MB|GB|TB]`, binary units."""
    match = re.fullmatch(r'\s*(\d+)\s*([KMGT]?B?)\s*', value.upper())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ValueError('invalid size %r' % value)
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def _bool(value):
    return value.strip().lower() in ('1', 'true', 'yes', 'on')


def _list(value, default):
    items = tuple(v.strip() for v in value.split(',') if v.strip()) if value else ()
    return items or default


def _ints(value, default):
    return tuple(int(v) for v in _list(value, ())) or default


def _checked_auth_mode(env):
    auth_mode = env.get('GLANCE_AUTH_MODE', 'noauth')
    if auth_mode not in AUTH_MODES:
        raise ValueError('GLANCE_AUTH_MODE must be one of %s, not %r'
                         % (', '.join(AUTH_MODES), auth_mode))
    if env.get('AWS_LAMBDA_FUNCTION_NAME') and auth_mode in UNVERIFIED_AUTH_MODES:
        raise ValueError('GLANCE_AUTH_MODE=%s trusts the client; a deployed stage must use '
                         'keystone' % auth_mode)
    if env.get('AWS_LAMBDA_FUNCTION_NAME') and env.get('GLANCE_KEYSTONE_PASSWORD'):
        # a plain environment variable is readable by whoever may read the function
        raise ValueError('GLANCE_KEYSTONE_PASSWORD is for local use only; a deployed stage '
                         'reads the password from the SSM SecureString named by '
                         'GLANCE_KEYSTONE_PASSWORD_PARAMETER')
    return auth_mode


def _source_settings(env):
    """External sources (x-image-meta-location, x-glance-api-copy-from)."""
    return dict(
        source_s3_buckets=_list(env.get('GLANCE_SOURCE_S3_BUCKETS'), ()),
        source_allowed_networks=_list(env.get('GLANCE_SOURCE_ALLOWED_NETWORKS'), ()),
        source_ports=_ints(env.get('GLANCE_SOURCE_PORTS'), (80, 443)),
        source_head_timeout=float(env.get('GLANCE_SOURCE_HEAD_TIMEOUT', 10)),
        source_deadline=float(env.get('GLANCE_SOURCE_DEADLINE', 40)),
        source_min_rate=int(env.get('GLANCE_SOURCE_MIN_RATE', 65536)))


def _keystone_settings(env):
    return dict(
        keystone_url=env.get('GLANCE_KEYSTONE_URL') or None,
        keystone_username=env.get('GLANCE_KEYSTONE_USERNAME') or None,
        keystone_password=env.get('GLANCE_KEYSTONE_PASSWORD') or None,
        keystone_project=env.get('GLANCE_KEYSTONE_PROJECT') or None,
        keystone_domain=env.get('GLANCE_KEYSTONE_DOMAIN', 'Default'),
        keystone_password_parameter=env.get('GLANCE_KEYSTONE_PASSWORD_PARAMETER') or None,
        token_cache_seconds=int(env.get('GLANCE_TOKEN_CACHE_SECONDS', 300)))


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    auth_mode = _checked_auth_mode(env)
    return Settings(
        **_source_settings(env), **_keystone_settings(env),
        region=env.get('AWS_DEFAULT_REGION') or env.get('AWS_REGION') or 'us-east-1',
        aws_endpoint_url=env.get('AWS_ENDPOINT_URL') or None,
        images_table=env.get('GLANCE_IMAGES_TABLE', 'glance-images'),
        members_table=env.get('GLANCE_MEMBERS_TABLE', 'glance-image-members'),
        image_bucket=env.get('GLANCE_IMAGE_BUCKET', 'glance-images'),
        auth_mode=auth_mode,
        log_level=env.get('GLANCE_LOG_LEVEL', 'INFO').upper(),
        policy_file=env.get('GLANCE_POLICY_FILE') or None,
        image_size_cap=int(env.get('GLANCE_IMAGE_SIZE_CAP', 1 << 40)),
        user_storage_quota=parse_size(env.get('GLANCE_USER_STORAGE_QUOTA', '0')),
        image_property_quota=int(env.get('GLANCE_IMAGE_PROPERTY_QUOTA', 128)),
        image_member_quota=int(env.get('GLANCE_IMAGE_MEMBER_QUOTA', 128)),
        limit_param_default=int(env.get('GLANCE_LIMIT_PARAM_DEFAULT', 25)),
        api_limit_max=int(env.get('GLANCE_API_LIMIT_MAX', 1000)),
        delayed_delete=_bool(env.get('GLANCE_DELAYED_DELETE', 'false')),
        deleted_retention_days=int(env.get('GLANCE_DELETED_RETENTION_DAYS', 0)),
        disk_formats=_list(env.get('GLANCE_DISK_FORMATS'), DEFAULT_DISK_FORMATS),
        container_formats=_list(env.get('GLANCE_CONTAINER_FORMATS'),
                                DEFAULT_CONTAINER_FORMATS),
        public_endpoint=env.get('GLANCE_PUBLIC_ENDPOINT') or None,
        inline_upload_limit=int(env.get('GLANCE_INLINE_UPLOAD_LIMIT', 4 << 20)),
        inline_download_limit=int(env.get('GLANCE_INLINE_DOWNLOAD_LIMIT', 4 << 20)),
        presign_expiry=int(env.get('GLANCE_PRESIGN_EXPIRY', 900)),
        upload_timeout=int(env.get('GLANCE_UPLOAD_TIMEOUT', 24 * 3600)),
        upload_part_size=int(env.get('GLANCE_UPLOAD_PART_SIZE', 64 << 20)),
        upload_parts_page=int(env.get('GLANCE_UPLOAD_PARTS_PAGE', 250)),
        upload_events_queue=env.get('GLANCE_UPLOAD_EVENTS_QUEUE', 'glance-upload-events'),
        copy_function=env.get('GLANCE_COPY_FUNCTION') or None,
        step_bytes=int(env.get('GLANCE_STEP_BYTES', 1 << 30)),
        step_reserve_seconds=float(env.get('GLANCE_STEP_RESERVE_SECONDS', 20)),
    )


_current: Settings | None = None


def settings() -> Settings:
    """The settings in force, read from the environment on first use."""
    global _current
    if _current is None:
        _current = from_environ()
    return _current


def override(**changes: Any) -> Settings:
    """Replace some settings (tests and the local runtime); returns the old ones."""
    global _current
    previous = settings()
    _current = dataclasses.replace(previous, **changes)
    return previous


def restore(previous: Settings) -> None:
    global _current
    _current = previous
