"""Tables on stdout and the JSON results file, shared by every bench group."""
import datetime
import json
import os
import platform

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(PROJECT_DIR, 'bench', 'results')
RESULTS_FILE = os.path.join(RESULTS_DIR, 'bench.json')


def ratio(ours, baseline):
    """ours / baseline, or None when either is missing or the baseline is 0."""
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


def fmt(value, digits=2):
    if value is None:
        return '-'
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return '{:,}'.format(value)
    if isinstance(value, float):
        return '{:,.{}f}'.format(value, digits)
    return str(value)


def fmt_ratio(value):
    return '-' if value is None else '%.2fx' % value


def table(title, header, rows, notes=()):
    """Print `rows` (lists of cells, already strings) under `header` as a pipe table.

    Text columns are left-aligned, the others (numbers) right-aligned.
    """
    cells = [list(header)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_looks_numeric(row[i]) for row in cells[1:]) for i in range(len(header))]

    def line(row):
        return '| ' + ' | '.join(cell.rjust(w) if num else cell.ljust(w)
                                 for cell, w, num in zip(row, widths, numeric)) + ' |'
    print(title)
    print(line(cells[0]))
    print('|' + '|'.join(('-' * (w + 1) + ':') if num else ('-' * (w + 2))
                         for w, num in zip(widths, numeric)) + '|')
    for row in cells[1:]:
        print(line(row))
    for note in notes:
        print('  ' + note)
    print(flush=True)


def _looks_numeric(text):
    stripped = text.replace(',', '').replace('x', '').replace('.', '').replace('-', '')
    stripped = stripped.replace('/', '').replace(' ', '').replace('%', '')
    return stripped.isdigit() or text == '-'


def save(group, figures):
    """Put one group's figures into bench/results/bench.json (other groups kept:
    a run of one group updates only its own part)."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    try:
        with open(RESULTS_FILE, encoding='utf-8') as existing:
            results = json.load(existing)
    except (OSError, ValueError):
        results = {}
    results.setdefault('groups', {})[group] = dict(
        figures, measured_at=_now(), machine=machine())
    results['updated_at'] = _now()
    with open(RESULTS_FILE + '.tmp', 'w', encoding='utf-8') as out:
        json.dump(results, out, indent=2, sort_keys=True)
        out.write('\n')
    os.replace(RESULTS_FILE + '.tmp', RESULTS_FILE)


def save_run(seconds, groups):
    """Record the wall time of a complete `python -m bench` run."""
    with open(RESULTS_FILE, encoding='utf-8') as existing:
        results = json.load(existing)
    results['last_full_run'] = {'groups': list(groups), 'wall_seconds': round(seconds, 1),
                                'finished_at': _now()}
    with open(RESULTS_FILE + '.tmp', 'w', encoding='utf-8') as out:
        json.dump(results, out, indent=2, sort_keys=True)
        out.write('\n')
    os.replace(RESULTS_FILE + '.tmp', RESULTS_FILE)


def machine():
    return {'cpus': os.cpu_count(), 'python': platform.python_version(),
            'platform': platform.platform(terse=True)}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
