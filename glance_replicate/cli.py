"""python -m glance_replicate {size,copy,compare}: the command line.

Exit status: 0 done (compare: in sync); 1 a failure or, for compare, a difference
(details on stdout, messages on stderr); 2 bad usage; 3 stopped before the end
(resumable: run the same command again); 130 interrupted (Ctrl-C), resumable too.
Credentials are read from options or the environment and only ever sent to their
own side; nothing is written locally.
"""
import argparse
import collections
import json
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from tqdm import tqdm

from glance_upload.api import ApiError
from glance_upload.cli import header, log, positive
from glance_replicate.endpoints import AuthError, Endpoint, Identity, V1Catalog, catalog
from glance_replicate.sync import Context, compare_image, not_copyable, run_copy
from glance_replicate.transfer import PartBudget

EXIT_OK, EXIT_FAILED, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 3, 130
IDENTITY_OPTIONS = (  # option, environment variable after OS_ or OS_<SIDE>_
    ('auth-url', 'AUTH_URL'), ('username', 'USERNAME'), ('user-id', 'USER_ID'),
    ('password', 'PASSWORD'), ('project-name', 'PROJECT_NAME'),
    ('project-id', 'PROJECT_ID'), ('user-domain-name', 'USER_DOMAIN_NAME'),
    ('project-domain-name', 'PROJECT_DOMAIN_NAME'), ('token', 'AUTH_TOKEN'))


def human(size):
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if size < 1024 or unit == 'TiB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (size, unit)
        size /= 1024


# -- the two sides ---------------------------------------------------------------------------
def identity_of(args, side):
    value = lambda option: getattr(args, '%s_%s' % (side, option.replace('-', '_')))
    headers = dict(value('header'))
    if value('trusted-tenant'):
        headers.update({'X-Identity-Status': 'Confirmed', 'X-Roles': 'admin',
                        'X-Tenant-Id': value('trusted-tenant')})
    return Identity(headers=headers, auth_url=value('auth-url'), username=value('username'),
                    user_id=value('user-id'), password=value('password'),
                    token=value('token'), project_name=value('project-name'),
                    project_id=value('project-id'),
                    user_domain_name=value('user-domain-name') or 'Default',
                    project_domain_name=value('project-domain-name') or 'Default')


def source_catalog(args):
    endpoint = Endpoint(args.source, identity_of(args, 'source'), pool=args.parallel + 4)
    return catalog(endpoint, args.source_api_version)


def target_catalog(args):
    return V1Catalog(Endpoint(args.target, identity_of(args, 'target'), pool=args.parallel + 4))


def source_images(source, args):
    images = list(source.images())
    if args.tenant:
        images = [image for image in images if image['owner'] in args.tenant]
    return images


def in_parallel(function, items, parallel, on_result, stop):
    """function(item) for every item on `parallel` threads; on_result(item, result) in
    this thread as they finish; no more are started once `stop` is set. On Ctrl-C the
    running ones stop at their next chunk."""
    pool = ThreadPoolExecutor(parallel)
    running, pending = {}, iter(items)
    try:
        while True:
            while len(running) < 2 * parallel and not stop.is_set():
                item = next(pending, None)
                if item is None:
                    break
                running[pool.submit(function, item)] = item
            if not running:
                return
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                on_result(running.pop(future), future.result())
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- size ------------------------------------------------------------------------------------
def command_size(args):
    source = source_catalog(args)
    images = source_images(source, args)
    rows = collections.OrderedDict()
    stop = threading.Event()

    def count(image, members):
        row = rows.setdefault(image['owner'] or '(no owner)', collections.Counter())
        row['images'] += 1
        row[image['status'] if image['status'] in ('active', 'queued') else 'other'] += 1
        row['public'] += image['is_public']
        row['bytes'] += image['size'] if image['status'] == 'active' else 0
        row['members'] += len(members)
    in_parallel(lambda image: source.members(image['id']), images, args.parallel, count, stop)
    total = sum(rows.values(), collections.Counter())
    columns = ('images', 'active', 'queued', 'other', 'public', 'bytes', 'members')
    if args.json:
        print(json.dumps({'source_api': source.version, 'tenants': rows, 'total': total},
                         indent=2, sort_keys=True))
        return EXIT_OK
    total_label = 'total (%d tenants)' % len(rows)
    width = max(len(name) for name in list(rows) + [total_label])
    line = '%-*s' + ' %7s' * 5 + ' %11s %8s'
    print(line % ((width, 'tenant') + columns))
    for name, row in sorted(rows.items()) + [(total_label, total)]:
        print(line % ((width, name) + tuple(human(row[c]) if c == 'bytes' else row[c]
                                            for c in columns)))
    print('source: Glance v%d API at %s' % (source.version, source.api.root))
    return EXIT_OK


# -- copy ------------------------------------------------------------------------------------
def describe(outcome):
    words = []
    for action in outcome['actions']:
        if action == 'bytes' and outcome.get('path'):
            words.append('bytes (%s, %s)' % (outcome['path'], human(outcome['bytes'])))
        elif action == 'resumed':
            words.append('resumed (%d parts stored already)' % outcome['parts_skipped'])
        else:
            words.append(action)
    return ', '.join(words)


def summarize(images, outcomes, skipped, dry_run, stopped):
    changed = collections.defaultdict(list)
    for outcome in outcomes:
        for action in outcome['actions']:
            changed[action].append(outcome['id'])
    failed = [{key: outcome[key] for key in ('id', 'name', 'owner', 'error')}
              for outcome in outcomes if outcome['error']]
    unchanged = [o['id'] for o in outcomes if not o['actions'] and not o['error']]
    summary = {
        'source_images': len(images), 'dry_run': dry_run, 'stopped': stopped,
        'created': changed['create'], 'metadata_updated': changed['metadata'],
        'members_updated': changed['members'], 'bytes_copied': changed['bytes'],
        'resumed': changed['resumed'],
        'inline': [o['id'] for o in outcomes if o.get('path') == 'inline'],
        'presigned': [o['id'] for o in outcomes if o.get('path') == 'presigned'],
        'bytes': sum(o['bytes'] for o in outcomes if 'bytes' in o['actions']),
        'parts_uploaded': sum(o.get('parts_uploaded', 0) for o in outcomes),
        'parts_skipped': sum(o.get('parts_skipped', 0) for o in outcomes),
        'unchanged': len(unchanged), 'skipped': skipped, 'failed': failed}
    summary['in_sync'] = not (failed or stopped or any(changed.values())) \
        and len(outcomes) + len(skipped) == len(images)
    return summary


def print_summary(summary):
    verb = 'would be ' if summary['dry_run'] else ''
    print('copy summary (%d source images%s)' % (
        summary['source_images'], ', dry run: nothing written' if summary['dry_run'] else ''))
    for label, key in (('created', 'created'), ('metadata updated', 'metadata_updated'),
                       ('members updated', 'members_updated')):
        print('  %-18s %d' % (verb + label, len(summary[key])))
    print('  %-18s %d (%d inline, %d presigned; %s; %d resumed, %d parts sent, %d parts '
          'found stored)' % (verb + 'bytes copied', len(summary['bytes_copied']),
                             len(summary['inline']), len(summary['presigned']),
                             human(summary['bytes']), len(summary['resumed']),
                             summary['parts_uploaded'], summary['parts_skipped']))
    print('  %-18s %d' % ('unchanged', summary['unchanged']))
    print('  %-18s %d' % ('skipped', len(summary['skipped'])))
    for item in summary['skipped']:
        print('    %s %s: %s' % (item['id'], item['name'], item['reason']))
    print('  %-18s %d' % ('failed', len(summary['failed'])))
    for item in summary['failed']:
        print('    %s %s: %s' % (item['id'], item['name'], item['error']))
    if summary['stopped']:
        print('stopped before the end: run the same command again to resume')
    elif summary['in_sync']:
        print('in sync: the target already matched the source, nothing copied')
    elif not summary['failed'] and not summary['dry_run']:
        print('copied: the target now matches the source')


def command_copy(args):
    source, target = source_catalog(args), target_catalog(args)
    images = source_images(source, args)
    skipped, work = [], []
    for image in images:
        reason = not_copyable(image, args.only_active)
        if reason:
            skipped.append({'id': image['id'], 'name': image['name'],
                            'status': image['status'], 'reason': reason})
        else:
            work.append(image)
    for item in skipped:
        log('%s %s: skipped, %s' % (item['id'], item['name'], item['reason']))
    stop = threading.Event()

    def progress(image):
        return tqdm(total=image['size'], desc=(image['name'] or image['id'])[:24], unit='B',
                    unit_scale=True, unit_divisor=1024, leave=False, disable=None)
    context = Context(source, target, args, stop, PartBudget(args.stop_after_parts), progress)
    outcomes = []
    overall = tqdm(total=len(work), desc='images', unit='image', disable=None)

    def done(image, outcome):
        outcomes.append(outcome)
        overall.update(1)
        if outcome.get('stopped'):
            stop.set()  # the other images stop at their next chunk
            log('%s %s: %s' % (outcome['id'], outcome['name'], outcome['stopped']))
        elif outcome['error']:
            log('%s %s: FAILED: %s' % (outcome['id'], outcome['name'], outcome['error']))
        elif outcome['actions']:
            log('%s %s: %s%s' % (outcome['id'], outcome['name'],
                                 'would ' if args.dry_run else '', describe(outcome)))
    try:
        in_parallel(lambda image: run_copy(context, image), work, args.parallel, done, stop)
    finally:
        overall.close()
    stopped = stop.is_set()
    if stopped:
        log('stopped; run the same command again to resume')
    summary = summarize(images, outcomes, skipped, args.dry_run, stopped)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print_summary(summary)
    if stopped:
        return EXIT_STOPPED
    return EXIT_FAILED if summary['failed'] else EXIT_OK


# -- compare ---------------------------------------------------------------------------------
def command_compare(args):
    source, target = source_catalog(args), target_catalog(args)
    images = source_images(source, args)
    context = Context(source, target, args, threading.Event(), None, None)
    report = {'source_images': len(images), 'differences': [], 'skipped': []}
    copyable = []
    for image in images:
        reason = not_copyable(image, args.only_active)
        if reason:
            report['skipped'].append({'id': image['id'], 'name': image['name'],
                                      'status': image['status'], 'reason': reason})
        else:
            copyable.append(image)

    def compared(image, result):
        for difference in result[3]:
            report['differences'].append(dict(difference, id=image['id'], name=image['name']))
    in_parallel(lambda image: compare_image(context, image), copyable, args.parallel,
                compared, context.stop)
    known = {image['id'] for image in images}
    for image in target.images():
        if image['id'] not in known and (not args.tenant or image['owner'] in args.tenant):
            report['differences'].append({'id': image['id'], 'name': image['name'],
                                          'field': 'image', 'source': None,
                                          'target': image['status']})
    report['differences'].sort(key=lambda d: (d['id'], d['field']))
    report['in_sync'] = not report['differences']
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for difference in report['differences']:
            print('%s %s: %s: source %s, target %s' % (
                difference['id'], difference['name'], difference['field'],
                json.dumps(difference['source'], sort_keys=True),
                json.dumps(difference['target'], sort_keys=True)))
        for item in report['skipped']:
            print('%s %s: not compared, %s' % (item['id'], item['name'], item['reason']))
        print('%s: %d source images, %d differences, %d not copyable' % (
            'in sync' if report['in_sync'] else 'NOT in sync', len(images),
            len(report['differences']), len(report['skipped'])))
    return EXIT_OK if report['in_sync'] else EXIT_FAILED


# -- the command line ------------------------------------------------------------------------
def add_side(parser, side):
    group = parser.add_argument_group(
        '%s identity' % side, 'Keystone v3 (password, or token with --%s-auth-url), a '
        'token as is, or plain headers; defaults from OS_%s_<NAME>, then OS_<NAME>'
        % (side, side.upper()))
    for option, variable in IDENTITY_OPTIONS:
        default = os.environ.get('OS_%s_%s' % (side.upper(), variable),
                                 os.environ.get('OS_' + variable))
        group.add_argument('--%s-%s' % (side, option), default=default,
                           metavar=variable if option != 'password' else 'PASSWORD')
    group.add_argument('--%s-header' % side, type=header, action='append', default=[],
                       metavar="'NAME: VALUE'", help='extra header (repeatable)')
    group.add_argument('--%s-trusted-tenant' % side, metavar='TENANT',
                       help='trusted-headers deployments: act as an admin of TENANT '
                            '(X-Identity-Status: Confirmed, X-Tenant-Id, X-Roles: admin)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m glance_replicate',
        description='Replicate images, members and checksums from a Glance (v1 or v2) '
                    'into a Glance v1 API (this service). Admin credentials on both sides.')
    commands = parser.add_subparsers(dest='command', required=True)
    size = commands.add_parser('size', help='what there is to move')
    copy = commands.add_parser('copy', help='copy what is missing or different')
    compare = commands.add_parser('compare', help='every difference; exit 0 when in sync')
    for command in (size, copy, compare):
        command.add_argument('source', metavar='SOURCE', help='source Glance URL')
        if command is not size:
            command.add_argument('target', metavar='TARGET', help='target Glance v1 URL')
        command.add_argument('--source-api-version', choices=('1', '2', 'auto'),
                             default='auto', help='default: v2 when it answers, else v1')
        command.add_argument('--tenant', action='append', metavar='T',
                             help='only the images owned by T (repeatable)')
        command.add_argument('--parallel', type=positive, default=4, metavar='N',
                             help='images handled at once (default %(default)s)')
        command.add_argument('--json', action='store_true', help='machine-readable output')
        add_side(command, 'source')
        if command is not size:
            command.add_argument('--only-active', action='store_true',
                                 help='skip queued source images (else copied as metadata)')
            add_side(command, 'target')
    copy.add_argument('--dry-run', action='store_true', help='say what would be done')
    copy.add_argument('--inline-limit', type=positive, default=4 << 20, metavar='BYTES',
                      help='larger images go through the presigned upload; at most the '
                           "target's GLANCE_INLINE_UPLOAD_LIMIT (default %(default)s)")
    copy.add_argument('--part-size', type=positive, metavar='BYTES',
                      help='multipart part size (default: the target chooses)')
    copy.add_argument('--wait', type=positive, default=600, metavar='SECONDS',
                      help="how long to wait for the target's verification of an image")
    # for tests: send at most K multipart parts, then stop as an interruption would
    copy.add_argument('--stop-after-parts', type=int, metavar='K', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dry_run = getattr(args, 'dry_run', False)
    return args


def main(argv=None):
    args = parse_args(argv)
    command = {'size': command_size, 'copy': command_copy, 'compare': command_compare}
    try:
        return command[args.command](args)
    except KeyboardInterrupt:
        log('interrupted; run the same command again to resume')
        return EXIT_INTERRUPTED
    except (AuthError, ApiError, OSError) as error:  # requests' errors are OSErrors
        log('error: %s' % error)
        return EXIT_FAILED
