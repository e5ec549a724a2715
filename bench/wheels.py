"""The Python packages the GPU machine lacks for the figure notebooks: which ones, fetching them, checking them.

The lent GPU machine has torch, torchvision, pandas, scipy and matplotlib (its whole list: bench/device_packages.txt)
but not papermill, nbclient, ipykernel, jupyter_client, scrapbook, ipywidgets or mnist1d, and it reaches no registry.
`prepare` (bench/prepare_wheels.sh) takes those seven and every package they need that the machine lacks, at the
versions installed here, pins them in bench/wheels.txt and downloads them as wheels for CPython 3.12 on manylinux
x86_64 into .whl/ (ignored by git; the device tool's `carry` sends it). `check` is what bench/gpu_check.py runs:
the packages that the figure notebooks import (their code cells, the lottery_nb modules, papermill's kernel) against
the machine's list and the pinned wheels, every pinned wheel's own requirements against the same, and, where .whl/
exists, its files against the pins; with --import it imports every module (on the GPU machine, after installing the
wheels as the command in bench/results/README.md does).

    python bench/wheels.py prepare            # here (PyPI reachable): bench/wheels.txt and .whl/
    python bench/wheels.py check [--import]   # anywhere: exit status 1 when something is missing
"""
import argparse, ast, importlib.metadata as md, importlib.util, json, re, subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE_LIST, PINS, WHEELS = ROOT / 'bench' / 'device_packages.txt', ROOT / 'bench' / 'wheels.txt', ROOT / '.whl'
ROOTS = ('papermill', 'nbclient', 'ipykernel', 'jupyter_client', 'scrapbook', 'ipywidgets', 'mnist1d')
KERNEL = ('papermill', 'nbclient', 'nbformat', 'ipykernel', 'jupyter_client', 'ipywidgets')   # run the notebooks
MARKERS = {'python_version': '3.12', 'python_full_version': '3.12.3', 'sys_platform': 'linux', 'os_name': 'posix',
           'platform_system': 'Linux', 'platform_machine': 'x86_64', 'implementation_name': 'cpython',
           'platform_python_implementation': 'CPython', 'extra': ''}
PLATFORMS = ['manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64'] + [f'manylinux_2_{n}_x86_64' for n in (24, 31, 34, 35, 39)]


def norm(name: str) -> str: return re.sub(r'[-_.]+', '-', name).lower()


def device_packages() -> set:
    return {norm(l) for l in DEVICE_LIST.read_text().splitlines() if l.strip() and not l.startswith('#')}


def pins() -> dict:
    "name -> version of the pinned wheels (bench/wheels.txt)."
    out = {}
    for l in PINS.read_text().splitlines() if PINS.exists() else []:
        if l.strip() and not l.startswith('#'): n, v = l.split('=='); out[norm(n)] = v.strip()
    return out


def requirements(meta_requires: list) -> list:
    "The names a distribution needs on CPython 3.12 on Linux (extras left out)."
    from packaging.requirements import Requirement
    out = []
    for r in meta_requires or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate(MARKERS): out.append(norm(req.name))
    return out


def wheel_requires(name: str, folder: Path = WHEELS) -> list:
    "A pinned package's requirements: from its wheel in `folder` when there, else from the copy installed here."
    for f in folder.glob('*.whl') if folder.is_dir() else []:
        if norm(f.name.split('-')[0]) == name:
            with zipfile.ZipFile(f) as z:
                meta = z.read(next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))).decode()
            return requirements([l.split(':', 1)[1].strip() for l in meta.splitlines() if l.startswith('Requires-Dist:')])
    return requirements(md.distribution(name).requires)


def closure(roots=ROOTS) -> dict:
    "`roots` and every package they need that the GPU machine lacks, at the versions installed here."
    have, seen, todo = device_packages(), {}, [norm(r) for r in roots]
    while todo:
        n = todo.pop()
        if n in seen or n in have: continue
        seen[n] = md.distribution(n).version
        todo += requirements(md.distribution(n).requires)
    return dict(sorted(seen.items()))


def imported_modules() -> dict:
    "Top-level modules the figure notebooks need -> where they are imported (notebook cells, lottery_nb, the kernel)."
    std, out = set(sys.stdlib_module_names), {}
    def add(src: str, where: str):
        try: tree = ast.parse(src)
        except SyntaxError: return
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for n in names:
                top = n.split('.')[0]
                if top not in std and top not in ('lottery_nb', '__future__'): out.setdefault(top, where)
    for nb in sorted((ROOT / 'nbs' / 'figures').glob('*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] == 'code':
                add('\n'.join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('%', '!'))),
                    f'nbs/figures/{nb.name}')
    for py in sorted((ROOT / 'lottery_nb').glob('*.py')): add(py.read_text(), f'lottery_nb/{py.name}')
    for k in KERNEL: out.setdefault(k, 'running the notebooks (papermill and its kernel)')
    return out


def distribution_of(module: str, _known: dict = {}) -> str:
    "The distribution that provides `module` (as installed here; the module's own name when unknown)."
    if not _known: _known.update(md.packages_distributions())   # (one scan of the installed packages)
    return norm(_known.get(module, [module])[0])


def check(folder: Path = WHEELS, do_import: bool = False) -> list:
    "Rows (what, result, detail); result is 'ok' or 'MISSING'."
    have, pinned, rows = device_packages(), pins(), []
    mods = imported_modules()
    where = lambda d: 'on the machine' if d in have else 'a pinned wheel' if d in pinned else None
    for m, src in sorted(mods.items()):
        d = distribution_of(m)
        rows.append((f'import {m} ({d}; {src})', 'ok' if where(d) else 'MISSING', where(d) or 'neither on the machine nor pinned'))
    for n, v in pinned.items():
        bad = [r for r in wheel_requires(n, folder) if not where(r)]
        rows.append((f'wheel {n}=={v}: its requirements', 'MISSING' if bad else 'ok', ', '.join(bad) or 'all there'))
    if folder.is_dir() and any(folder.glob('*.whl')):
        files = {norm(f.name.split('-')[0]): f for f in folder.glob('*.whl')}
        stale = sorted(set(files) - set(pinned)); absent = sorted(set(pinned) - set(files))
        size = sum(f.stat().st_size for f in files.values())
        rows.append((f'{folder.name}/: {len(files)} wheels, {size / 2**20:.1f} MiB', 'MISSING' if absent or stale else 'ok',
                     f"absent: {', '.join(absent) or 'none'}; not pinned: {', '.join(stale) or 'none'}"))
    if do_import:
        for m in sorted(mods):
            try: importlib.import_module(m); rows.append((f'import {m} here', 'ok', 'imported'))
            except Exception as e: rows.append((f'import {m} here', 'MISSING', f'{type(e).__name__}: {e}'[:200]))
    return rows


def prepare(folder: Path = WHEELS) -> int:
    "Pin the closure in bench/wheels.txt and download its wheels into `folder` (PyPI must be reachable)."
    want = closure()
    PINS.write_text('# pinned by bench/wheels.py prepare: what the GPU machine lacks for the figure notebooks\n'
                    + ''.join(f'{n}=={v}\n' for n, v in want.items()))
    folder.mkdir(exist_ok=True)
    for f in folder.glob('*.whl'):
        if norm(f.name.split('-')[0]) not in want: f.unlink()
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--python-version', '3.12',
           '--implementation', 'cp', '-d', str(folder), '--quiet'] + [a for p in PLATFORMS for a in ('--platform', p)]
    r = subprocess.run(cmd + [f'{n}=={v}' for n, v in want.items()])
    size = sum(f.stat().st_size for f in folder.glob('*.whl'))
    print(f'{len(list(folder.glob("*.whl")))} wheels in {folder} ({size / 2**20:.1f} MiB) for {len(want)} pins')
    return r.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('what', choices=('prepare', 'check'))
    ap.add_argument('--dir', default=str(WHEELS), help='the wheel folder (default: .whl/ in the repository root)')
    ap.add_argument('--import', dest='do_import', action='store_true', help='also import every needed module')
    a = ap.parse_args(argv)
    if a.what == 'prepare': return prepare(Path(a.dir))
    rows = check(Path(a.dir), a.do_import)
    for what, res, detail in rows: print(f'{res:8} {what}: {detail}')
    return int(any(r == 'MISSING' for _, r, _ in rows))


if __name__ == '__main__':
    sys.exit(main())
