"""Progress on long work and fig3's slider in a rendered page.

- The library's loops report what they compute through `lottery_nb.progress` (one status file, replaced atomically).
- `lottery figures` prints, per running notebook and heartbeat, that status; it filters kernel noise from what it
  forwards, keeps the kernel's whole stderr in a log, and still shows a failing cell's error and traceback.
- fig3's slider is embedded PNGs plus inline JavaScript, so the executed (and `nbdev_clean`ed) notebook carries every
  level's image; the widget state of the notebook's other widgets (tqdm bars) is stored and kept by nbdev_clean.
"""
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import scrapbook as sb
import torch

import lottery_nb.progress as lp
from lottery_nb.figures import forwarded, heartbeat_lines, heartbeat_seconds, kernel_noise, run_notebook
from lottery_nb.config import LotteryError, get_preset

from conftest import BIN, ROOT, figures_cmd, run

torch.set_num_threads(1)

NOISE = [
    '[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication (including code and '
    'outputs) is sent in plain text and is susceptible to eavesdropping. Use IPC transport or launch with kernel '
    'manager-provisioned CurveZMQ keys to enable transport encryption.',
    '0.00s - Debugger warning: It seems that frozen modules are being used, which may',
    '0.00s - make the debugger miss breakpoints. Please pass -Xfrozen_modules=off',
    '0.00s - to python to disable frozen modules.',
    '0.00s - Note: Debugging will proceed. Set PYDEVD_DISABLE_FILE_VALIDATION=1 to disable this validation.',
    "RuntimeError: Kernel didn't respond in 60 seconds",
    '/v/lib/python3.11/site-packages/zmq/_future.py:724: RuntimeWarning: Proactor event loop does not implement add_reader',
    '[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.',
]
REAL = ['Traceback (most recent call last):', '  File "/work/x.py", line 3, in <module>', "KeyError: 'levels'",
        'Fatal Python error: Segmentation fault', 'torch.OutOfMemoryError: CUDA out of memory.',
        '/v/site-packages/torch/nn/modules/module.py:1: UserWarning: something the user should see']


def test_filter_drops_noise_and_keeps_errors():
    assert all(kernel_noise(l) for l in NOISE)
    assert not any(kernel_noise(l) for l in REAL)
    mixed = [NOISE[0], REAL[0], REAL[1], NOISE[1], NOISE[2], REAL[2], NOISE[6], '  self._get_loop()', '', REAL[3]]
    assert list(forwarded(l + '\n' for l in mixed)) == [REAL[0], REAL[1], REAL[2], REAL[3]]
    # an indented line after a real line is kept (a traceback's frames)
    assert list(forwarded([REAL[0], REAL[1]])) == REAL[:2]


def test_heartbeat_interval_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv('LOTTERY_HEARTBEAT', raising=False)
    assert heartbeat_seconds() == 30.0 and heartbeat_seconds(2) == 2.0
    monkeypatch.setenv('LOTTERY_HEARTBEAT', '0.25')
    assert heartbeat_seconds() == 0.25 and heartbeat_seconds(5) == 5.0
    monkeypatch.setenv('LOTTERY_HEARTBEAT', 'often')
    with pytest.raises(LotteryError, match=r"heartbeat='often' is not allowed"): heartbeat_seconds()


def test_heartbeat_lines_one_per_running_notebook(tmp_path):
    st = {n: tmp_path / f'{n}.status' for n in ('fig2', 'fig3', 'fig5')}
    lp.write_status('training cpu: level 7/11 (seed 1, rewind 150), 12000/26000 steps (46%)', st['fig2'])
    lines = heartbeat_lines({'fig2': 10.0, 'fig3': 20.0}, st, now=30.0)   # fig5 is not running: no line
    assert lines == ['    fig2 20 s: training cpu: level 7/11 (seed 1, rewind 150), 12000/26000 steps (46%)',
                     '    fig3 10 s: no progress reported yet']


def test_status_is_replaced_atomically(tmp_path):
    "A reader never sees an empty or partial file while a writer replaces it, and no temporary file stays."
    f = tmp_path / 's.status'
    for i in range(200):
        assert lp.write_status(f'step {i} ' + 'x' * 2000, f)
        assert lp.read_status(f) == f'step {i} ' + 'x' * 2000
    assert [p.name for p in tmp_path.iterdir()] == ['s.status']


def test_library_reports_levels_and_points(tmp_path, monkeypatch):
    "run_imp and error_plane report through the status file even without a bar (progress=False)."
    from lottery_nb.connectivity import error_plane
    from lottery_nb.imp import run_imp
    seen = []
    real = lp.write_status
    monkeypatch.setattr(lp, 'write_status', lambda text, path=None: (seen.append(text), real(text, path))[1])
    monkeypatch.setenv(lp.PROGRESS_ENV, str(tmp_path / 'nb.status'))
    exp = run_imp(get_preset('smoke', rewind_steps=('5it',), levels=2), tmp_path / 'runs', progress=False)
    assert 'training smoke: dense level 0 (seed 0), 0/' in seen[1]
    assert any(s.startswith('training smoke: level 2/2 (seed 0, rewind 5), ') for s in seen), seen
    assert seen[-1].endswith('(100%), finished') and seen[-1] == lp.read_status(tmp_path / 'nb.status')
    seen.clear()
    error_plane(exp, 0, 5, 0, grid=4, progress=False, cache=False)
    assert seen[0] == 'plane seed 0, rewind 5, level 0, 0/16 points (0%)'
    assert seen[-1] == 'plane seed 0, rewind 5, level 0, 16/16 points (100%), finished'
    monkeypatch.delenv(lp.PROGRESS_ENV)
    assert lp.progress(16, 0, False, 'unwatched') is None   # nobody watches: nothing is built


def test_failing_cell_keeps_its_error_and_traceback(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f(): return {}['levels']\nf()")])
    nbformat.write(nb, tmp_path / 'bad.ipynb')
    res = run_notebook('bad', tmp_path / 'bad.ipynb', {}, tmp_path)
    assert not res['ok'] and res['error'] == "cell [1]: KeyError: 'levels'"
    assert 'def f(): return {}' in res['traceback'] and '\x1b[' not in res['traceback']
    assert (tmp_path / 'bad.stderr.log').exists()


@pytest.fixture(scope='module')
def fig3_run(tmp_path_factory):
    "lottery figures on smoke, fig3 only (it trains, then computes planes), with a heartbeat of 0.2 s."
    d = tmp_path_factory.mktemp('fig3')
    r = run(figures_cmd('--preset', 'smoke', '--only', 'fig3', '--out', d / 'out', '--store', d / 'runs'),
            env={'LOTTERY_HEARTBEAT': '0.2'})
    return d, r


def test_heartbeat_names_level_and_points(fig3_run):
    d, r = fig3_run
    assert r.returncode == 0, r.stdout + r.stderr
    beats = [l for l in r.stdout.splitlines() if re.match(r'^\[0/1 notebooks done, [^\]]+\] \| fig3 \S+: ', l)]   # one line per beat
    assert any(re.search(r'\| fig3 \S+: training smoke: (dense level 0|level [12]/2) \(seed 0', l) for l in beats), r.stdout
    assert any(re.search(r'\| fig3 \S+: plane seed 0, rewind 5, level [01], \d+/2601 points \(\d+%', l) for l in beats), r.stdout
    assert 'Executing:' not in r.stderr            # no per-cell papermill bar


def test_kernel_noise_is_filtered_but_logged(fig3_run):
    d, r = fig3_run
    log = d / 'out' / 'smoke' / 'notebooks' / 'fig3_planes.stderr.log'
    assert log.exists()
    assert not any(kernel_noise(l) for l in r.stdout.splitlines() + r.stderr.splitlines()), r.stderr
    shown = [l.split(' kernel: ', 1)[1] for l in r.stderr.splitlines() if l.startswith('    fig3 kernel: ')]
    assert shown == list(forwarded(log.read_text().splitlines(keepends=True)))   # the terminal shows what the log has
    # ipykernel's 'running over TCP without encryption' is not logged as if it were the notebook's error (issue 26)
    assert not any(kernel_noise(l) for l in log.read_text().splitlines()), log.read_text()


def slider_html(nb):
    outs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])
            if 'text/html' in o.get('data', {}) and 'lottery-slider' in o['data']['text/html']]
    assert len(outs) == 1
    return outs[0]['data']['text/html']


def test_fig3_page_carries_every_level(fig3_run, tmp_path):
    "After nbdev_clean (as committed), the slider output holds one PNG per computed level, and the widget state is kept."
    d, _ = fig3_run
    nb_path = d / 'out' / 'smoke' / 'notebooks' / 'fig3_planes.ipynb'
    levels = sb.read_notebook(str(nb_path)).scraps.data_dict['levels']
    shutil.copy(nb_path, tmp_path / 'fig3_planes.ipynb')
    subprocess.run([str(BIN / 'nbdev_clean'), '--fname', str(tmp_path / 'fig3_planes.ipynb')], cwd=ROOT, check=True)
    nb = nbformat.read(tmp_path / 'fig3_planes.ipynb', as_version=4)
    h = slider_html(nb)
    assert levels == [0, 1]
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', h)) == len(levels)
    assert re.findall(r'<img alt="level L (\d+)"', h) == [str(l) for l in levels]
    assert json.loads(html.unescape(re.search(r'data-labels="([^"]+)"', h).group(1))) == [str(l) for l in levels]
    state = nb.metadata['widgets']['application/vnd.jupyter.widget-state+json']['state']
    assert any(m['model_name'] == 'FloatProgressModel' for m in state.values())   # the planes' tqdm bars render


@pytest.mark.skipif(shutil.which('node') is None, reason='node is not installed')
def test_slider_script_switches_images(tmp_path):
    "The slider's inline handler, run by node on a minimal stand-in DOM: moving to index 2 shows image 2 only."
    from lottery_nb.plots import image_slider
    h = image_slider({0: b'\x89PNG a', 1: b'\x89PNG b', 2: b'\x89PNG c'}, label='level L', start=1).data
    js = html.unescape(re.search(r'oninput="([^"]+)"', h).group(1))
    labels = html.unescape(re.search(r'data-labels="([^"]+)"', h).group(1))
    script = f"""
const imgs = [0, 1, 2].map(i => ({{style: {{display: i == 1 ? '' : 'none'}}}}));
const out = {{textContent: '1'}};
const d = {{querySelectorAll: s => imgs, querySelector: s => out}};
const input = {{value: '2', dataset: {{labels: {json.dumps(labels)}}}, closest: s => d}};
(new Function({json.dumps(js)})).call(input);
console.log(JSON.stringify([imgs.map(m => m.style.display), out.textContent]));
"""
    (tmp_path / 's.js').write_text(script)
    r = subprocess.run(['node', str(tmp_path / 's.js')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [['none', 'none', ''], '2']


def test_live_lines_in_a_terminal(tmp_path):
    """In a terminal `lottery figures` draws a live line per running notebook (its stage, rate and ETA) under the job's
    line, redrawn in place as tqdm redraws its bars; the whole heartbeat lines of a pipe are not printed (issue 26)."""
    import os, pty, select, time
    from conftest import DEADLINE, popen
    master, slave = pty.openpty()
    long = ['--levels', '2', '--set', 'training_steps=200it', '--set', 'milestones=150it', '--set', 'checkpoint_every=10it']
    p = popen(figures_cmd('--preset', 'smoke', '--only', 'fig5', *long, '--store', tmp_path / 'runs', '--out', tmp_path / 'out'),
              stdout=slave, stderr=slave, env={'TERM': 'xterm', 'LOTTERY_HEARTBEAT': '3600'})
    os.close(slave)
    out, t0 = b'', time.monotonic()
    while time.monotonic() - t0 < DEADLINE:
        if not select.select([master], [], [], 1.0)[0]:
            if p.poll() is not None: break
            continue
        try: chunk = os.read(master, 1 << 16)
        except OSError: break   # EIO: every writer of the terminal has gone
        if not chunk: break
        out += chunk
    os.close(master)
    assert p.wait(timeout=DEADLINE) == 0, out.decode(errors='replace')[-3000:]
    text = out.decode(errors='replace').replace('\r\n', '\n')
    assert '\x1b[J' in text and re.search(r'\r\x1b\[\d+A\x1b\[J', text), repr(text[-2000:])   # redrawn in place
    lines = [l.split('\x1b[J')[-1] for l in text.split('\n')]
    assert any(re.fullmatch(r'\[0/1 notebooks done, [^\]]*\]', l) for l in lines), repr(text[-2000:])
    assert any(re.fullmatch(r'  fig5 \S+: training smoke: .*\d+/\d+ steps \(\d+%, \S+ steps/s, ETA \w+\)', l) for l in lines), \
        repr(text[-3000:])
    assert not any('] | fig5' in l for l in lines)   # not the one-line form of a pipe
    assert '1 of 1 notebook ok' in text
