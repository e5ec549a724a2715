"""bench/gpu_check.py, the one-command GPU check: its CPU dry run runs every part and writes every section and row a
GPU run writes (the figure notebooks end to end at toy size among them), its own process without the packages the GPU
machine lacks; bad input exits 2 with one sentence; a part that throws or runs out of its budget is reported and the
next part runs. bench/wheels.py: the figure notebooks' imports are on the GPU machine or pinned as wheels."""
import importlib.util
import json
import re
import sys

import pytest
import torch

from conftest import ROOT, run

BLOCKED = ('mnist1d', 'papermill', 'scrapbook', 'nbdev', 'fastcore', 'torchvision')   # absent on the GPU machine
# gpu_check's own process and its torchrun workers run without them; the figure runs it starts (lottery figures and
# their kernels) take them from the wheels there (bench/wheels.py), from the environment here
BLOCKER = f'''import sys
class _Absent:
    "Make these packages look uninstalled, as on the GPU machine before the wheels."
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {BLOCKED!r}: raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
if sys.argv and sys.argv[0].endswith(('gpu_check.py', 'worker.py')): sys.meta_path.insert(0, _Absent())
'''


def load_gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', ROOT / 'bench' / 'gpu_check.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


gc_mod = load_gpu_check()


def sections(text: str) -> dict:
    "title -> the first cells of the section's table rows."
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith('## '): cur = out.setdefault(line[3:], [])
        elif cur is not None and line.startswith('| ') and not line.startswith('|---'): cur.append(line.split(' | ')[0][2:])
    return {t: rows[1:] for t, rows in out.items()}   # without the header row


@pytest.fixture(scope='module')
def dry(tmp_path_factory):
    "The CPU dry run, with the packages the GPU machine lacks made unimportable (in the torchrun workers too)."
    d = tmp_path_factory.mktemp('gpu_check')
    (d / 'site').mkdir(); (d / 'site' / 'sitecustomize.py').write_text(BLOCKER)
    out = d / 'dry.md'
    p = run([sys.executable, ROOT / 'bench' / 'gpu_check.py', '--device', 'cpu', '--tiny', '--out', out],
            env={'PYTHONPATH': f"{d / 'site'}:{ROOT}"})
    return p, out


def test_dry_run_covers_every_section_and_row(dry):
    p, out = dry
    assert p.returncode == 0, p.stderr[-3000:]
    text = out.read_text()
    secs = sections(text)
    for part, (title, cols) in gc_mod.SECTIONS.items():
        assert title in secs, f'section {title!r} missing from the dry run'
        for want in gc_mod.ROWS[part]:
            assert any(r.startswith(want) for r in secs[title]), f'{part}: no row starting {want!r} in {secs[title]}'
    assert set(gc_mod.ROWS) == set(gc_mod.SECTIONS)
    for part in gc_mod.SECTIONS: assert f'>> {part}: start' in p.stdout and f'>> {part}: end' in p.stdout
    assert 'FAIL' not in text, text   # on the CPU every check passes (or is INFO/SKIPPED with its reason)
    assert "torchvision's architecture rebuilt here: torchvision is not installed" in text   # blocked, as on the GPU machine
    demo = [l for l in text.splitlines() if l.startswith(('| fig', '| demonstration'))]
    assert sum(' | PASS | ' in l for l in demo) >= 6, demo     # fig1..fig5 end to end, and the demonstration row
    assert '| cifar10_resnet20 fig5 | PASS |' in text and '| cifar100_resnet18 fig4 | PASS |' in text
    assert '| missing CIFAR file (data_batch_3) on cpu | PASS |' in text and '| corrupt CIFAR file (data_batch_3) on cpu | PASS |' in text
    assert '| out of memory with more than 3 runs (injected at step 2 of a group of 6) | bitwise equal' in text
    assert 'Verdicts of the demonstration, beside the committed CPU run' in text
    assert '- command: `PYTHONPATH=. python3 bench/gpu_check.py --device cpu --tiny --out' in text


def test_dry_run_results(dry):
    p, out = dry
    data = json.loads(re.search(r'<!-- gpu_check results: (.*) -->', out.read_text()).group(1))
    assert data['device'] == 'cpu' and data['tiny'] and set(data['seconds']) == set(gc_mod.SECTIONS)
    assert data['grouped_rel'] == 0.0   # on the CPU a group is bitwise the runs trained one by one
    assert 0 < data['floor']['rel'] < data['seed_scale']['rel']   # rounding noise is smaller than another data order
    sp = data['speed']
    for k in ('r20_naive', 'r20_ours', 'r20_group4', 'r20_group12', 'r18_ours'): assert sp[k]['steps_per_s'] > 0, k
    lv = data['level']
    assert lv['runs'] == 12 and lv['suite_steps'] == 4 * 62400 + 12 * sum(62400 - r for r in (0, 250, 2000)) * 4
    assert lv['level_hours'] == pytest.approx(62400 / lv['group_steps_per_s'] / 3600)
    assert set(data['demo']['notebooks']) == {'fig1', 'fig2', 'fig3', 'fig4', 'fig5'} and data['demo']['tiny']
    assert {'fig2', 'fig5'} <= set(data['verdicts']) and set(data['rehearsal']['notebooks']) == {'fig4', 'fig5'}
    assert data['captured_rel']['grouped R=4 + capture, 1'] == 0.0   # the captured step's code: one-by-one's bits here
    assert data['memory']['ResNet-20 group of 12']['estimate'] > 0 and data['memory']['ResNet-20 group of 12']['peak'] is None
    tr = data['torchrun']['gloo']
    assert tr['finite'] and tr['shared']['n'] == tr['alone']['n'] == 100
    assert round(tr['shared']['error'] * 100) == round(tr['alone']['error'] * 100)   # error counts: exactly equal
    assert tr['shared']['loss'] == pytest.approx(tr['alone']['loss'], rel=1e-12)


def test_cuda_without_cuda_exits_2(capsys):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    assert gc_mod.main(['--device', 'cuda', '--out', '/nonexistent/never-written.md']) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and "device='cuda' was asked for but CUDA is not available" in err


def test_bad_device_exits_2(capsys, tmp_path):
    assert gc_mod.main(['--device', 'tpu', '--out', str(tmp_path / 'x.md')]) == 2
    assert "--device 'tpu' is not allowed" in capsys.readouterr().err and not (tmp_path / 'x.md').exists()


def test_failing_and_overrunning_parts_are_reported_and_the_next_runs(tmp_path):
    rep = gc_mod.Report(tmp_path / 'r.md', ['# test'])
    a = type('A', (), {'tiny': True})()
    dev = torch.device('cpu')
    def boom(p): p.row('first row', 'x', 'y', 'PASS'); raise RuntimeError('broken part\nsecond line')
    def spin(p):
        while True: pass   # runs until the part's budget (1 s) stops it
    def row_fails(p):
        p.guard('a row', lambda: 1 / 0); p.row('after', '1', '2', '3')
    gc_mod.run_part(rep, 'correctness', 30, boom, dev, a)
    gc_mod.run_part(rep, 'speed', 1, spin, dev, a)
    gc_mod.run_part(rep, 'level', 30, row_fails, dev, a)
    text = (tmp_path / 'r.md').read_text()
    assert 'FAIL: the part stopped with RuntimeError: broken part\n' in text and '| first row |' in text
    assert "Stopped: the part's budget of 1 s was spent" in text
    assert '| a row |  | FAIL: ZeroDivisionError: division by zero |' in text and '| after | 1 | 2 | 3 |' in text


def test_report_name_by_card_and_date():
    assert gc_mod.slug('NVIDIA H200') == 'nvidia-h200' and gc_mod.slug('NVIDIA GeForce RTX 4090 (x)') == 'nvidia-geforce-rtx-4090-x'


def load_make_readme():
    spec = importlib.util.spec_from_file_location('make_readme', ROOT / 'scripts' / 'make_readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_readme_times_come_from_the_newest_gpu_results(dry, tmp_path):
    "The README's GPU block: 'not measured' without a GPU results file; else the newest file's numbers, card and date."
    mr = load_make_readme()
    _, out = dry
    assert mr.gpu_results(tmp_path) is None and 'not measured on a GPU yet' in mr.gpu_times(tmp_path)
    text = out.read_text()
    data = json.loads(re.search(r'<!-- gpu_check results: (.*) -->', text).group(1))
    (tmp_path / 'gpu-cpu-2030-01-01.md').write_text(text)             # a CPU dry run under a GPU name: never used
    assert mr.gpu_results(tmp_path) is None
    def fake(card, date, scale):   # the dry run's own report, as if a GPU had written it, its speeds times `scale`
        d = json.loads(json.dumps(data)); d.update(device='cuda', tiny=False, card=card, date=date)
        for r in d['speed'].values(): r['steps_per_s'] *= scale; r['images_per_s'] *= scale
        d['level']['level_hours'] /= scale; d['level']['suite_hours'] /= scale; d['level']['one_by_one_suite_hours'] /= scale
        name = f"gpu-{card.lower().replace(' ', '-')}-{date}.md"
        (tmp_path / name).write_text(text.replace(re.search(r'<!-- gpu_check results: .* -->', text).group(0),
                                                  f'<!-- gpu_check results: {json.dumps(d)} -->'))
        return d
    fake('NVIDIA A100', '2026-11-30', 100.0)
    new = fake('NVIDIA H200', '2026-12-04', 300.0)
    got = mr.gpu_results(tmp_path)
    assert (got['card'], got['date'], got['file']) == ('NVIDIA H200', '2026-12-04', str(tmp_path / 'gpu-nvidia-h200-2026-12-04.md'))
    s = mr.gpu_times(tmp_path)
    assert 'on one NVIDIA H200 on 2026-12-04' in s and 'A100' not in s and 'not measured on a GPU yet' not in s
    assert f"ResNet-20 one run at a time: {new['speed']['r20_ours']['steps_per_s']:.1f} steps/s per run" in s
    assert f"{new['level']['suite_hours']:.0f} h on one GPU" in s and 'Projected from the measured rates' in s
    md = f'before\n{mr.BEGIN}\nstale text\n{mr.END}\nafter'
    assert mr.with_gpu_times(md, tmp_path) == f'before\n{mr.BEGIN}\n{s}\n{mr.END}\nafter'


def test_rebuilt_resnet50_is_torchvisions_architecture():
    "The ResNet-50 timed where torchvision is absent has torchvision's parameter shapes, in its order."
    pytest.importorskip('torchvision')
    from lottery_nb.models import get_model
    ours, theirs = gc_mod.resnet50_plain(), get_model('resnet50', 1000, (3, 224, 224), seed=0)
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in theirs.state_dict().values()]
    assert sum(p.numel() for p in ours.parameters()) == 25_557_032


def test_only_and_deadline(capsys, tmp_path):
    "--only runs the named parts; a part past the deadline is reported as stopped, not run; a bad part name: exit 2."
    assert gc_mod.main(['--device', 'cpu', '--tiny', '--only', 'nope', '--out', str(tmp_path / 'x.md')]) == 2
    assert "--only 'nope' is not allowed; name parts from packages, correctness" in capsys.readouterr().err
    assert gc_mod.main(['--device', 'cpu', '--tiny', '--only', 'packages,level', '--deadline', '0', '--out',
                        str(tmp_path / 'r.md'), '--work', str(tmp_path / 'w')]) == 0
    text = (tmp_path / 'r.md').read_text()
    assert '## Packages the figure notebooks need' in text and '## Correctness' not in text
    assert text.count("Stopped: the part's budget of 0 s was spent") == 2


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'bench' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_wheels_cover_the_figure_notebooks(monkeypatch):
    "Every package the figure notebooks import is on the GPU machine or pinned, with every requirement of the pins."
    wh = load('wheels')
    mods = wh.imported_modules()
    assert {'torch', 'numpy', 'matplotlib', 'scrapbook', 'IPython', 'papermill', 'ipykernel', 'mnist1d'} <= set(mods)
    pins = wh.pins()
    assert {'papermill', 'nbclient', 'ipykernel', 'jupyter-client', 'scrapbook', 'ipywidgets', 'mnist1d'} <= set(pins)
    assert not set(pins) & wh.device_packages()   # nothing carried that the machine has
    rows = wh.check(folder=ROOT / 'no-such-folder')
    assert [r for r in rows if r[1] != 'ok'] == []
    monkeypatch.setattr(wh, 'device_packages', lambda: set())   # a machine without numpy: the check says so
    assert any(r[1] == 'MISSING' and r[0].startswith('import numpy') for r in wh.check(folder=ROOT / 'no-such-folder'))


def test_synthetic_cifar_files_read_by_the_real_loader(tmp_path):
    GF = load('gpu_figures')
    from lottery_nb.data import clear_data_cache, get_data
    for which, classes in (('cifar10', 10), ('cifar100', 100)):
        GF.write_cifar(tmp_path, which, 50, 20)
        clear_data_cache()
        d = get_data(which, root=tmp_path)
        assert (d.num_train, d.num_test, d.num_classes, d.input_shape) == (50, 20, classes, (3, 32, 32))
        assert len(set(d.y_train.tolist())) > 1
    clear_data_cache()


def test_verdicts_are_read_and_compared(tmp_path):
    "Verdicts come from the executed notebooks' scrapbook outputs; a yes against a no of the same row is a contradiction."
    GF = load('gpu_figures')
    def nb(path, verdicts):
        out = {'output_type': 'display_data', 'metadata': {}, 'data': {GF.SCRAP: {
            'name': 'verdicts', 'data': verdicts, 'encoder': 'json', 'version': 1}}}
        path.write_text(json.dumps({'cells': [{'cell_type': 'code', 'source': '', 'outputs': [out]}]}))
    v = lambda c, x: dict(claim=c, verdict=x, margin=0.1, uncertainty=0.05, n=4)
    (tmp_path / 'g').mkdir(); (tmp_path / 'c').mkdir()
    nb(tmp_path / 'g' / 'fig2_x.ipynb', [v('a', 'yes'), v('b', 'no'), v('c', 'undecided')])
    nb(tmp_path / 'c' / 'fig2_x.ipynb', [v('a', 'no'), v('b', 'no'), v('c', 'yes')])
    g, c = GF.verdicts(tmp_path / 'g'), GF.verdicts(tmp_path / 'c')
    assert GF.compare(g, c) == [('fig2', 'a', 'yes', 'no')]
    assert GF.verdict_table(g, c)[2] == '| fig2 | a | yes | 0.1 ± 0.05 | 4 | no |'
    committed = GF.verdicts(ROOT / 'nbs' / 'figures')   # the CPU gallery the demonstration is set beside
    assert {'fig2', 'fig5'} <= set(committed)
