"""The code's citations of the v1 behaviour (`v1 §N`) resolve in docs/v1-behaviour.md."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEHAVIOUR = ROOT / 'docs' / 'v1-behaviour.md'
# Every part of the project that may cite (chalicelib, tests, bench, glance_upload,
# infra, and any package added later); not docs/, dist/ or hidden directories.
CITING_DIRS = tuple(sorted(path.name for path in ROOT.iterdir() if path.is_dir()
                           and path.name not in ('docs', 'dist')
                           and not path.name.startswith('.')))
TEXT_SUFFIXES = ('.py', '.json', '.yaml', '.yml', '.md', '.txt', '.ini', '.cfg', '.toml')
# A section sign followed by a number cites this document, unless another document is
# named right before it (conftest.py cites the design notes as "DESIGN §8").
CITATION = re.compile(r'(?<!DESIGN )\u00a7(\d+(?:\.\d+)?)')
HEADING = re.compile(r'^#{2,3} (\d+(?:\.\d+)?)\.? ', re.MULTILINE)


def _sections():
    return HEADING.findall(BEHAVIOUR.read_text(encoding='utf-8'))


def _lines(suffixes=TEXT_SUFFIXES):
    """('path:line', text) of every line of the citing files, app.py included."""
    paths = [ROOT / 'app.py'] + [path for directory in CITING_DIRS
                                 for path in sorted((ROOT / directory).rglob('*'))]
    for path in paths:
        if not path.is_file() or path.suffix not in suffixes or '__pycache__' in path.parts:
            continue
        text = path.read_text(encoding='utf-8', errors='replace')
        for number, line in enumerate(text.splitlines(), 1):
            yield '%s:%d' % (path.relative_to(ROOT), number), line


def _citations():
    """{section: ['path:line', ...]} of every citation."""
    cited = {}
    for place, line in _lines():
        for section in CITATION.findall(line):
            cited.setdefault(section, []).append(place)
    return cited


def test_every_cited_section_is_a_heading():
    cited, sections = _citations(), set(_sections())
    missing = {section: places for section, places in cited.items()
               if section not in sections}
    assert missing == {}
    # the code does cite it (the citations were found, not silently skipped)
    assert sum(len(places) for places in cited.values()) > 50
    assert {'1', '4.2', '13.1', '14.5', '18.1', '19'} <= set(cited)


def test_sections_are_numbered_without_gaps():
    sections = _sections()
    top = [s for s in sections if '.' not in s]
    assert top == [str(n) for n in range(20)]   # §0 to §19, in order
    for parent in top:
        subsections = [s for s in sections if s.startswith(parent + '.')]
        assert subsections == ['%s.%d' % (parent, n) for n in range(1, len(subsections) + 1)]


def test_citations_use_the_documented_form():
    """The header of docs/v1-behaviour.md defines the `v1` form; the former `spec`
    form named a document outside the repository."""
    assert 'as **`v1 \u00a7N`**' in BEHAVIOUR.read_text(encoding='utf-8')
    old_form = re.compile(r'\bspec \u00a7', re.IGNORECASE)
    assert [place for place, line in _lines() if old_form.search(line)] == []
