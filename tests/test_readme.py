"""The README's "From Python" block does what it says: run after the main job (here `lottery figures` on the smoke
preset, in a temporary store), it reads the stored runs and the plane Fig. 3 stored, and evaluates no plane point.

The block is read from README.md (and must be the one of nbs/index.ipynb, which README.md is made from), so this test
breaks when the README's example changes; only the preset and the (seed, rewind, level) references are substituted,
because the smoke preset has rewind steps 0 and 5 and 2 levels where `cpu` has 150 and 11."""
import json
import re

import pytest

from conftest import ROOT, figures_cmd, run

FENCE = re.compile(r'## From Python\n+```python\n(.*?)```', re.S)

# README text -> smoke text; each must occur exactly as often as said, or the README changed and this test with it
# The smoke data get 1,200 test examples, more than Fig. 3's plane subset, as the cpu preset's 10,000 are.
SUBSET_CHECK = {'num_test': 1200}
SUBSTITUTIONS = [("get_preset('cpu')", f"get_preset('smoke', data_kwargs={SUBSET_CHECK!r})", 1),
                 ('exp.weights(0, 150, 3), exp.mask(0, 150, 3)', 'exp.weights(0, 5, 1), exp.mask(0, 5, 1)', 1),
                 ('error_plane(exp, 0, 150, 3, grid=51)', 'error_plane(exp, 0, 5, 1, grid=51)', 1),
                 ('interpolation_path(exp, (0, 150, 3), (0, 150, 4))', 'interpolation_path(exp, (0, 5, 1), (0, 5, 2))', 1)]


def readme_block() -> str:
    "The Python code of the README's 'From Python' section."
    m = FENCE.search((ROOT / 'README.md').read_text())
    assert m, "README.md has no ```python block under '## From Python'"
    return m.group(1)


def smoke_block() -> str:
    code = readme_block()
    for old, new, n in SUBSTITUTIONS:
        assert code.count(old) == n, f'the README block no longer holds {old!r} {n} time(s): update this test with it'
        code = code.replace(old, new)
    bare = re.sub(r'#.*', '', code)    # (the comments still speak of the cpu preset)
    assert not re.search(r'\b150\b', bare) and "'cpu'" not in bare, bare
    return code


def test_readme_block_is_the_index_notebooks():
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    blocks = [m.group(1) for c in cells if (m := FENCE.search(''.join(c['source'])))]
    if not blocks:   # the heading and the code in separate cells
        blocks = [m.group(1) for c in cells for m in [re.search(r'```python\n(.*?)```', ''.join(c['source']), re.S)]
                  if m and 'error_plane' in m.group(1)]
    assert blocks == [readme_block()], 'README.md is stale: run scripts/make_readme.py'


def test_fig3_default_is_error_planes_default():
    "Fig. 3's `plane_test_examples` and `error_plane`'s default `limit` are one number, so the plane Fig. 3 stores is the one the README reads."
    import inspect
    from lottery_nb.figures import notebook_parameters
    from lottery_nb.planes import PLANE_TEST_EXAMPLES, error_plane
    assert inspect.signature(error_plane).parameters['limit'].default == PLANE_TEST_EXAMPLES
    declared = notebook_parameters(ROOT / 'nbs' / 'figures' / 'fig3_planes.ipynb')['plane_test_examples']
    assert declared == repr(PLANE_TEST_EXAMPLES), declared


def test_readme_python_block_reads_the_main_jobs_results(tmp_path, monkeypatch):
    import torch
    import lottery_nb.planes
    code = smoke_block()
    store = tmp_path / 'runs'
    r = run(figures_cmd('--preset', 'smoke', '--set', f'data_kwargs={json.dumps(SUBSET_CHECK)}', '--only', 'fig3',
                        '--store', store, '--out', tmp_path / 'figures', '--no-progress'), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    planes = {p: p.stat().st_mtime_ns for p in store.rglob('plane-*.pt')}
    assert planes, 'fig3 stored no plane'

    levels = {p: p.stat().st_mtime_ns for p in store.rglob('metrics.json')}
    evaluated = []   # plane grids the block computes anew (none: Fig. 3 stored the plane it asks for)
    monkeypatch.setattr(lottery_nb.planes._PlaneGrid, 'compute', lambda self, *a, **k: evaluated.append(a) or pytest.fail('a plane was computed'))
    monkeypatch.setenv('LOTTERY_STORE', str(store)); monkeypatch.chdir(tmp_path)
    n = torch.get_num_threads(); torch.set_num_threads(1)
    ns = {}
    try: exec(compile(code, 'README.md', 'exec'), ns)
    finally: torch.set_num_threads(n)
    assert not evaluated
    assert {p: p.stat().st_mtime_ns for p in store.rglob('metrics.json')} == levels   # nothing trained
    assert ns['exp'].path.parent == store and len(ns['rows']) == 6         # 1 dense run + rewinds 0, 5 × levels 1, 2
    assert ns['plane']['test_error'].shape == (51, 51)
    from lottery_nb.planes import PLANE_TEST_EXAMPLES
    assert PLANE_TEST_EXAMPLES < SUBSET_CHECK['num_test'] and ns['exp'].cfg.data_kwargs == SUBSET_CHECK
    assert {p: p.stat().st_mtime_ns for p in store.rglob('plane-*.pt')} == planes   # read, not rewritten
    assert ns['path']['test_error'][0] == ns['exp'].metrics(0, 5, 1)['test_error']
