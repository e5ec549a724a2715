"""The docs site: what can be checked without Quarto. The notebooks are processed as `nbdev_proc_nbs` does, but
without its Quarto installer: without Quarto, nbdev 2 runs `sudo touch .installing`, downloads Quarto and runs
`pip install -e "<root>[dev]"`, and a test installs nothing. Every notebook must process, with a rendered show_doc
entry for every public function and class of every module; Quarto's own render is skipped here with a message when
Quarto is not installed. Stub `sudo`, `pip`, `pip3` and `curl` first on PATH record any call: none may happen."""
import importlib
import json
import os
import shutil
import stat
import subprocess

import pytest

from conftest import BIN, ENV, ROOT

# nbdev's `nbdev_proc_nbs` is `_pre_docs()`, whose first step `_ensure_quarto()` installs Quarto (sudo, curl, pip)
# when `quarto` is not on PATH; the rest (refresh _quarto.yml, the module index, the sidebar, proc_nbs) installs nothing.
PROC_NBS = """import nbdev.quarto as q
assert callable(getattr(q, '_ensure_quarto', None)) and callable(getattr(q, '_pre_docs', None)), 'nbdev changed: see tests/test_docs.py'
q._ensure_quarto = lambda: None
q._pre_docs()
"""
INSTALLERS = ('sudo', 'pip', 'pip3', 'curl')


def stubs(folder, record):
    "Scripts named after the installers that append their command line to `record` and fail; returns `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    for name in INSTALLERS:
        f = folder / name
        f.write_text(f'#!/bin/sh\necho "{name} $*" >> "{record}"\nexit 1\n')
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def stubbed_env(folder) -> dict:
    return {**ENV, 'PATH': f"{folder}{os.pathsep}{ENV.get('PATH', '')}"}


@pytest.fixture(scope='module')
def installer_calls(tmp_path_factory):
    "The file in which the stub installers record their calls (absent: no call)."
    return tmp_path_factory.mktemp('stubs') / 'calls.txt'


@pytest.fixture(scope='module')
def proc(tmp_path_factory, installer_calls):
    env = stubbed_env(stubs(tmp_path_factory.mktemp('bin'), installer_calls))
    r = subprocess.run([str(BIN / 'python'), '-c', PROC_NBS], capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return ROOT / '_proc'


def test_the_stubs_record_a_call(tmp_path):
    "The check below can fail: a stub first on PATH is the `sudo` or `pip` a subprocess's shell finds, and it records."
    record = tmp_path / 'calls.txt'
    env = stubbed_env(stubs(tmp_path / 'bin', record))
    r = subprocess.run('sudo touch .installing; pip install -e ".[dev]"', shell=True, cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and record.read_text().splitlines() == ['sudo touch .installing', 'pip install -e .[dev]']
    assert not (tmp_path / '.installing').exists()


def test_processing_installs_nothing(proc, installer_calls):
    assert not installer_calls.exists(), f'the docs processing called an installer: {installer_calls.read_text()}'


def test_every_notebook_is_processed(proc):
    src = {p.relative_to(ROOT / 'nbs') for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in str(p)}
    out = {p.relative_to(proc) for p in proc.rglob('*.ipynb')}
    assert src and src <= out, src - out
    assert (proc / '_quarto.yml').exists()


def test_show_doc_for_every_public_name(proc):
    rendered = ''
    for p in proc.glob('*.ipynb'):
        for c in json.loads(p.read_text())['cells']:
            for o in c.get('outputs', []):
                rendered += ''.join(o.get('data', {}).get('text/markdown', []))
    missing = []
    for mod in sorted(p.stem for p in (ROOT / 'lottery_nb').glob('*.py') if not p.stem.startswith('_')):
        m = importlib.import_module(f'lottery_nb.{mod}')
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name)
            if not callable(obj) or name.isupper() or getattr(obj, '__module__', None) != m.__name__: continue  # aliases, constants
            if f'### {name}' not in rendered: missing.append(f'{mod}.{name}')
    assert not missing, f'no rendered show_doc for {missing}'


def test_quarto_render_or_skip():
    if shutil.which('quarto') is None:
        pytest.skip('Quarto is not installed here (its installers download from the internet): the site render itself is not checked')
    r = subprocess.run([str(BIN / 'nbdev_docs')], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stderr[-2000:]


def sidebar_entries(path) -> list:
    "Every page of a Quarto sidebar file, in order (sections flattened)."
    import yaml
    def walk(items):
        for it in items:
            if isinstance(it, dict): yield from walk(it.get('contents', []))
            else: yield it
    return list(walk(yaml.safe_load(path.read_text())['website']['sidebar']['contents']))


def test_sidebar_lists_every_notebook_and_nothing_else():
    "The hand-kept sidebar (custom_sidebar) names each notebook of nbs/ once; no nbdev.yml, styles.css or missing page."
    import configparser
    s = configparser.ConfigParser(); s.read(ROOT / 'settings.ini')
    assert s['DEFAULT']['custom_sidebar'] == 'True'
    entries = sidebar_entries(ROOT / 'nbs' / 'sidebar.yml')
    nbs = {str(p.relative_to(ROOT / 'nbs')) for p in (ROOT / 'nbs').rglob('*.ipynb')
           if '.ipynb_checkpoints' not in str(p) and not p.name.startswith('_')}
    assert len(entries) == len(set(entries)), entries
    assert set(entries) == nbs, f'missing from the sidebar: {sorted(nbs - set(entries))}; not notebooks: {sorted(set(entries) - nbs)}'


def test_processed_sidebar_has_only_pages(proc):
    entries = sidebar_entries(proc / 'sidebar.yml')
    assert entries and all(e.endswith(('.ipynb', '.qmd', '.md')) for e in entries), entries


def test_front_matter_is_front_matter(proc):
    """A notebook's YAML front matter (e.g. `skip_exec`) is a raw cell, as nbdev 2 expects: nbdev_proc_nbs merges it
    into the page's front matter, and an HTML export (nbconvert, JupyterLab) does not print it as text."""
    fm = [p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in str(p)
          and any(c['cell_type'] == 'raw' and ''.join(c['source']).startswith('---') for c in json.loads(p.read_text())['cells'])]
    assert fm, 'no notebook has YAML front matter'
    for p in fm:
        raw = [c for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'raw']
        assert all(c['metadata'].get('raw_mimetype') == 'text/x-yaml' for c in raw), p
        first = json.loads((proc / p.relative_to(ROOT / 'nbs')).read_text())['cells'][0]
        assert first['cell_type'] == 'raw' and 'skip_exec: true' in ''.join(first['source']), p
    r = subprocess.run([str(BIN / 'jupyter'), 'nbconvert', '--to', 'html', '--stdout', str(fm[0])], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and '<html' in r.stdout, r.stderr[-2000:]
    assert 'skip_exec' not in r.stdout


# ---- Parameter docs, `help()` and public names (issue 26 items 8 and 9) ----
import importlib.util
import inspect
import pydoc
import sys


def _load_todo():
    spec = importlib.util.spec_from_file_location('docs_todo', ROOT / 'scripts' / 'docs_todo.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


todo = _load_todo()

# Public parameters without a docment (`scripts/docs_todo.py`), per module: every module is at 0 after the three docs
# passes, and stays there.
UNDOCUMENTED = {m: 0 for m in (
    'stats', 'data', 'models', 'pruning', 'connectivity', 'planes', 'custom', 'adaptive', 'adaptive_store', 'claims',
    'cli', 'distributed', 'figures', 'plots', 'points', 'progress', 'store', 'config', 'evaluator', 'group', 'imp',
    'paths', 'training')}
# exported notebook cells over 60 lines, per module: none
LONG_CELLS = {m: 0 for m in UNDOCUMENTED}
# the public names of every module: what the README, the tutorials, the figures, the command line and the paper's
# concepts call; internals other modules use are `#| exporti` (importable, not in `__all__`)
PUBLIC = {
    'stats': ['mean_std', 'fmt_mean_std'],
    'pruning': ['Mask', 'dense_mask', 'num_remaining', 'num_prunable', 'density', 'magnitude_prune', 'random_prune',
                'prune', 'apply_mask'],
    'models': ['PRUNABLE_TYPES', 'MODELS', 'prunable_names', 'count_params', 'init_open_lth', 'register_model',
               'get_model', 'CifarResNet', 'resnet20', 'resnet18', 'resnet50', 'mnist1d_cnn', 'mlp', 'linear',
               'mnist1d_resnet'],
    'data': ['DATASETS', 'DATA_CACHE_SIZE', 'DataSet', 'TensorDataSet', 'register_dataset', 'default_data_root',
             'clear_data_cache', 'get_data', 'load_synthetic', 'load_mnist1d', 'load_cifar10', 'load_cifar100',
             'ImageFolderDataSet', 'load_imagenet'],
    'connectivity': ['DEFAULT_BETAS', 'Point', 'load_point', 'interpolation_path', 'error_barrier',
                     'is_linearly_connected', 'matching_threshold', 'is_matching', 'in_lcs_set', 'barrier_matrix',
                     'mean_barrier_matrix', 'error_plane'],
    'planes': ['PLANE_TEST_EXAMPLES', 'error_plane'],
    'custom': ['module_attributes', 'model_sources', 'custom_config'],
    'config': ['PRESETS', 'LotteryError', 'to_steps', 'ExperimentConfig', 'load_config', 'TrainPlan', 'register_preset',
               'get_preset', 'project_root', 'default_store'],
    'training': ['get_device', 'evaluate', 'MemoryCheckpoint', 'TrainingDiverged', 'TrainOptions', 'train'],
    'group': ['GroupRun', 'group_memory', 'GroupLimit', 'train_group', 'CudaGraph', 'EagerGraph'],
    'evaluator': ['SUBSET_SIZE', 'PointEvaluator'],
    'imp': ['dense_seed_list', 'run_imp'],
    'paths': ['DEFAULT_BETAS', 'error_barrier', 'is_linearly_connected', 'test_examples', 'matching_threshold',
              'is_matching', 'interpolation_path', 'interpolation_paths', 'in_lcs_set', 'projection_path',
              'barrier_matrix', 'mean_barrier_matrix'],
    # the second pass
    'adaptive': ['DEFAULT_RATIOS', 'AdaptiveSettings', 'fixed_schedule', 'last_epoch_epsilon', 'AdaptiveExperiment',
                 'run_adaptive', 'schedule_cost', 'levels_to_reach', 'matching_rewind', 'compare_schedules',
                 'adaptive_table'],
    'adaptive_store': ['AdaptiveStore'],
    'claims': ['VERDICTS', 'decide', 'Verdict', 'untestable', 'by_construction', 'dense_epsilon', 'dense_threshold',
               'epsilon_interval', 'matching', 'linearly_connected', 'lcs_membership', 'all_hold', 'negate',
               'share_hold', 'most_above', 'iff_segments', 'iff_agreement', 'adaptive_saving', 'no_worse_than',
               'share_at_most', 'rewind_better', 'rewind_contrast', 'matching_levels', 'sparsest_matching',
               'deeper_matching', 'claims_markdown', 'replicates_needed', 'power_table', 'power_markdown'],
    'cli': ['summary_table', 'imp_main', 'figures_main', 'adaptive_main', 'store_main', 'main'],
    'distributed': ['dist_env', 'split_chains', 'init_distributed', 'leave_distributed', 'train_ddp', 'evaluate_ddp'],
    'figures': ['FIGURES', 'HEARTBEAT_ENV', 'figures_dir', 'notebook_parameters', 'available_figures', 'run_figures'],
    'plots': ['ROLE_COLORS', 'DENSE_COLOR', 'rewind_roles', 'rewind_label', 'display_name', 'setting_title',
              'solution_label', 'projection_label', 'Curve', 'by_rewind', 'DenseBand', 'dense_stats',
              'draw_matching_band', 'plot_error_vs_density', 'same_schedule', 'save_figure', 'figure_png',
              'image_slider', 'FigureSetup', 'figure_setup'],
    'points': ['Point', 'load_point', 'project_point', 'combine'],
    'progress': ['PROGRESS_ENV', 'LINES_ENV', 'write_status', 'read_status', 'Progress', 'progress'],
    'store': ['StoreCorrupt', 'StoreError', 'Experiment', 'load_frame', 'list_runs', 'audit', 'verify', 'repair']}


def _module(m): return importlib.import_module(f'lottery_nb.{m}')


def test_every_public_parameter_is_documented():
    "Per module, the public parameters without a docment are at most the recorded count (0 for the first two passes)."
    assert set(UNDOCUMENTED) == set(todo.modules()), 'a module was added or removed: record its count here'
    over = {m: todo.undocumented(_module(m)) for m in todo.modules()}
    over = {m: names for m, names in over.items() if len(names) > UNDOCUMENTED[m]}
    assert not over, f'public parameters without a docment: {over}'


def test_no_exported_cell_over_60_lines():
    assert set(LONG_CELLS) == set(todo.modules())
    over = {m: todo.long_cells(m) for m in todo.modules() if len(todo.long_cells(m)) > LONG_CELLS[m]}
    assert not over, f'exported cells over {todo.LIMIT} lines: {over}'


def test_public_names():
    for m, names in PUBLIC.items(): assert _module(m).__all__ == names, m


def test_the_counts_can_fail(tmp_path, monkeypatch):
    "A module with one parameter and one field without a docment, and a 61-line exported cell, is counted as such."
    (tmp_path / 'docs_probe.py').write_text(
        "from dataclasses import dataclass\n"
        "__all__ = ['f', 'g', 'C', 'D', 'K']\n"
        "def f(a, # documented\n      b, c=1, # b has none: two on one line, only c is documented\n      *args, **kw):\n"
        "    'f.'\n"
        "def g(x): 'g.'\n"
        "class C:\n    'C.'\n    def __init__(self, p, # p\n                 q): pass\n"
        "@dataclass\nclass D:\n    'D.'\n    u:int # u\n    v:int = 0\n"
        "class K(C): 'inherits its __init__: counted in C'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module('docs_probe')
    assert todo.undocumented(mod) == ['f(b)', 'f(args)', 'f(kw)', 'g(x)', 'C(q)', 'D(v)']
    nb = tmp_path / 'x.ipynb'
    cell = lambda s: {'cell_type': 'code', 'source': s, 'metadata': {}, 'outputs': []}
    nb.write_text(json.dumps({'cells': [cell('#| export\n' + 'x = 1\n' * 60), cell('#| export\ny = 1'),
                                        cell('#| exporti\ndef h(): pass\n' + '\n' * 60), cell('z = 1\n' * 70)]}))
    assert [(i, n) for i, n, _ in todo.exported_cells(nb)] == [(0, 61), (1, 2), (2, 62)]


def test_help_shows_the_docments():
    "`help()` shows a public function's parameter docs, from the docments (config.add_param_docs)."
    from lottery_nb.pruning import magnitude_prune
    text = pydoc.render_doc(magnitude_prune, renderer=pydoc.plaintext)
    assert 'fraction\n        1 - alpha: the fraction of remaining weights to prune' in text, text
    assert 'Returns\n    -------\n    Mask\n        the next mask m^(L+1)' in text, text
    from lottery_nb.data import TensorDataSet   # a class: its own __init__'s parameters
    assert 'x_train\n |      training inputs, (N, ...) in their stored dtype' in pydoc.render_doc(TensorDataSet, renderer=pydoc.plaintext)


def test_help_in_a_fresh_process():
    "As a user sees it: a new Python, `help()` on a function of a module imported on its own."
    r = subprocess.run([str(BIN / 'python'), '-c', 'import lottery_nb.planes as p; help(p.error_plane)'],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bn_seed\n        'recompute': which subset" in r.stdout, r.stdout[-2000:]


def _processed():
    "(module, name, object, section) of every public function and class whose docstring got a parameter section."
    from lottery_nb.config import param_block
    out = []
    for m in todo.modules():
        for name, obj in todo.public_callables(_module(m)):
            block = param_block(obj)
            if block: out.append((m, name, obj, block))
    return out


def test_show_doc_renders_each_docment_once():
    """nbdev's show_doc of every public name is what it was before its docstring got the 'Parameters' section: the
    docs site shows the docments once (in the signature), not again as a section."""
    from nbdev.showdoc import show_doc
    done = _processed()
    assert len(done) > 100
    changed, absent, compared = [], [], 0
    for m, name, obj, block in done:
        doc = obj.__doc__
        if not doc.endswith('\n\n' + block) and doc != block:
            if m in PUBLIC or m == 'config': absent.append(f'{m}.{name}')   # the modules that call add_param_docs
            continue
        after = show_doc(obj)._repr_markdown_()
        obj.__doc__ = doc[:-len(block)].rstrip('\n')
        try: before = show_doc(obj)._repr_markdown_()
        finally: obj.__doc__ = doc
        compared += 1
        if 'Parameters\n----------' in after or before != after: changed.append(f'{m}.{name}')
    assert compared >= 40, compared
    assert not absent, f'no parameter section in the docstring of {absent}'
    assert not changed, f'show_doc renders the parameter section of {changed}'


def test_param_docs_reads_as_fastcore():
    "The standard-library reader of `config.param_docs` gives what `fastcore.docments` (show_doc's reader) gives."
    import dataclasses
    from fastcore.docments import docments
    from lottery_nb.config import param_docs
    n, differ = 0, []
    for m in todo.modules():
        for name, obj in todo.public_callables(_module(m)):
            if obj is not inspect.unwrap(obj): continue   # fastcore reads no source of a wrapper (lru_cache)
            fc = dict(docments(obj, args_kwargs=True)); fc.pop('self', None)
            if isinstance(obj, type):
                fc.pop('return', None)
                if not dataclasses.is_dataclass(obj) and not inspect.isfunction(vars(obj).get('__init__')): fc = {}
            n += 1
            if param_docs(obj) != fc: differ.append(f'{m}.{name}')
    assert n > 100 and not differ, differ
