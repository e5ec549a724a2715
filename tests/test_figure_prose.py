"""Numbers about a run come from that run: a figure notebook executed on `smoke` states no count of seeds or dense runs
that its run does not have, neither in its Markdown cells nor in the Markdown its code computes. A paragraph that
cites a `bench/` file reports another run (by file and date) and is left out."""
import json
import re

import pytest

from conftest import BIN, ROOT, run
from lottery_nb.config import get_preset
from lottery_nb.imp import dense_seed_list

FIGURES = sorted((ROOT / 'nbs' / 'figures').glob('fig*.ipynb'))
COUNT = re.compile(r'\b(\d+)\s+(extra\s+)?(seeds?|replicates?|dense\s+runs?)\b', re.I)
SEED_RANGE = re.compile(r'\bseeds?\s+(\d+)\s*[-–]\s*(\d+)\b', re.I)
SEED_LIST = re.compile(r'\bseeds?\s+(\d+(?:\s*,\s*\d+)+)\b', re.I)


def stated_counts(text: str) -> list:
    "(kind, value, words) for every count of seeds or dense runs `text` states: 'seeds'/'dense'/'extra' with a number, 'seed set' with a set."
    out = []
    for m in COUNT.finditer(text):
        kind = 'extra' if m.group(2) else 'dense' if m.group(3).lower().startswith('dense') else 'seeds'
        out.append((kind, int(m.group(1)), m.group(0)))
    out += [('seed set', set(range(int(m.group(1)), int(m.group(2)) + 1)), m.group(0)) for m in SEED_RANGE.finditer(text)]
    out += [('seed set', {int(x) for x in m.group(1).split(',')}, m.group(0)) for m in SEED_LIST.finditer(text)]
    return out


def wrong_counts(text: str, seeds, dense_runs: int) -> list:
    "The counts `text` states that a run with these seeds and this many dense runs does not have (bench/ paragraphs left out)."
    ok = {'seeds': {len(seeds)}, 'dense': {dense_runs, len(seeds)},        # every dense run, or the replicates' own
          'extra': {dense_runs - len(seeds)}}
    bad = []
    for para in re.split(r'\n\s*\n', text):
        if 'bench/' in para: continue
        for kind, value, words in stated_counts(para):
            if (value != set(seeds)) if kind == 'seed set' else (value not in ok[kind]): bad.append(words)
    return bad


def markdown_of(nb: dict) -> list:
    "The text of every Markdown cell and of every Markdown output a code cell computed."
    out = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown']
    for c in nb['cells']:
        for o in c.get('outputs', []) if c['cell_type'] == 'code' else []:
            md = o.get('data', {}).get('text/markdown')
            if md: out.append(''.join(md))
    return out


def test_the_check_finds_typed_counts():
    typed = "The table above is one run: seeds 0-3, their 16 dense runs, at oneDNN's default ISA."
    assert sorted(wrong_counts(typed, seeds=(0,), dense_runs=1)) == ['16 dense runs', 'seeds 0-3']
    assert wrong_counts(typed, seeds=(0, 1, 2, 3), dense_runs=16) == []
    assert wrong_counts('4 seeds and the 12 extra dense runs', (0, 1, 2, 3), 16) == []
    assert wrong_counts('4 seeds and the 12 extra dense runs', (0,), 1) == ['4 seeds', '12 extra dense runs']
    assert wrong_counts('ε from 8 dense seeds (`bench/calibrate_regime_results.md`, 2026-12-05)', (0,), 1) == []
    assert wrong_counts('only 1 seed; a spread needs at least 2', (0,), 1) == []


@pytest.mark.parametrize('nb', FIGURES, ids=lambda p: p.stem)
def test_committed_markdown_states_no_count_of_the_smoke_run_it_does_not_have(nb):
    "A count typed into a Markdown cell is the same for every run, so it is wrong for some run: here, `smoke`'s."
    cfg = get_preset('smoke')
    cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown']
    bad = [w for t in cells for w in wrong_counts(t, cfg.seeds, len(dense_seed_list(cfg)))]
    assert not bad, f'{nb.name} states counts its smoke run does not have: {bad}'


def test_fig5_executed_on_smoke_states_only_its_own_counts(tmp_path):
    "Execute fig5 on `smoke` (1 seed, 1 dense run) and read its Markdown, typed and computed."
    out = tmp_path / 'fig5.ipynb'
    r = run([BIN / 'papermill', ROOT / 'nbs' / 'figures' / 'fig5_rewind.ipynb', out, '-p', 'preset', 'smoke',
             '-p', 'store', tmp_path / 'runs', '-p', 'out_dir', tmp_path / 'figures'])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    cfg = get_preset('smoke')
    texts = markdown_of(json.loads(out.read_text()))
    assert any('untestable' in t for t in texts)                 # the computed table is read too
    bad = [w for t in texts for w in wrong_counts(t, cfg.seeds, len(dense_seed_list(cfg)))]
    assert not bad, f'fig5 on smoke states counts its run does not have: {bad}'
