"""The docs to-do list of issue 26: for every module of `lottery_nb`, its public names, the public parameters without
a docment and the exported notebook cells over 60 lines.

    python scripts/docs_todo.py          # counts per module, then every name
    python scripts/docs_todo.py --counts # counts only

A public parameter is a parameter of a function or class in the module's `__all__` and defined in that module (a
re-exported name counts in its own module): every parameter of a function, including `*args` and `**kwargs` (a
pass-through says where it goes, e.g. "# passed to `get_data`"), and for a class the parameters of its own `__init__`
(without `self`) or a dataclass's fields. Methods are not counted. Docments are read by `lottery_nb.config.param_docs`,
which reads them as `fastcore.docments` (and so nbdev's `show_doc`) does: a comment on the parameter's line, else the
comment lines just above it; of two parameters on one line only the last one is documented.
`tests/test_docs.py` holds every module to its recorded counts."""
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 60   # lines of one exported cell, its `#| export` line included


def modules() -> list:
    "The names of the modules of `lottery_nb`, sorted."
    return sorted(p.stem for p in (ROOT / 'lottery_nb').glob('*.py') if not p.stem.startswith('_'))


def public_callables(mod) -> list:
    "(name, object) of the functions and classes in `mod.__all__` that `mod` defines (not re-exports)."
    objs = [(n, getattr(mod, n)) for n in getattr(mod, '__all__', [])]
    return [(n, o) for n, o in objs if callable(o) and getattr(o, '__module__', None) == mod.__name__]


def undocumented(mod) -> list:
    "'name(parameter)' for every public parameter of `mod` without a docment."
    from lottery_nb.config import param_docs
    out = []
    for name, obj in public_callables(mod):
        docs = param_docs(obj)
        docs.pop('return', None)
        out += [f'{name}({p})' for p, d in docs.items() if not d]
    return out


def exported_cells(nb_path: Path) -> list:
    "(cell index, number of lines, first defined name) of every `#| export`/`#| exporti` cell of a notebook."
    import re
    out = []
    for i, c in enumerate(json.loads(nb_path.read_text())['cells']):
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or not re.match(r'#\|\s*exporti?\s*$', src.split('\n')[0]): continue
        names = re.findall(r'^(?:def|class)\s+(\w+)|^(\w+)\s*[:=]', src, re.M)
        out.append((i, len(src.splitlines()), next((a or b for a, b in names), '')))
    return out


def notebook_of() -> dict:
    "module -> its notebook (the one whose `#| default_exp` names it)."
    import re
    out = {}
    for p in sorted((ROOT / 'nbs').glob('*.ipynb')):
        m = re.search(r'#\|\s*default_exp\s+(\w+)', p.read_text())
        if m: out[m.group(1)] = p
    return out


def long_cells(mod: str, limit: int = LIMIT) -> list:
    "'cell N (L lines, name)' for every exported cell of `mod`'s notebook over `limit` lines."
    nb = notebook_of().get(mod)
    return [f'cell {i} ({n} lines, {name})' for i, n, name in exported_cells(nb) if n > limit] if nb else []


def report() -> dict:
    "module -> {'public': names in `__all__`, 'undocumented': [...], 'long_cells': [...]}."
    out = {}
    for m in modules():
        mod = importlib.import_module(f'lottery_nb.{m}')
        out[m] = {'public': list(getattr(mod, '__all__', [])), 'undocumented': undocumented(mod),
                  'long_cells': long_cells(m)}
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    r = report()
    print(f"{'module':16s} {'public':>6s} {'undocumented':>12s} {'cells>60':>8s}")
    for m, d in r.items():
        print(f"{m:16s} {len(d['public']):6d} {len(d['undocumented']):12d} {len(d['long_cells']):8d}")
    tot = [sum(len(d[k]) for d in r.values()) for k in ('public', 'undocumented', 'long_cells')]
    print(f"{'total':16s} {tot[0]:6d} {tot[1]:12d} {tot[2]:8d}")
    if '--counts' in argv: return
    for m, d in r.items():
        if d['undocumented'] or d['long_cells']:
            print(f"\n{m}:")
            if d['undocumented']: print('  undocumented: ' + ', '.join(d['undocumented']))
            if d['long_cells']: print('  cells over 60 lines: ' + '; '.join(d['long_cells']))


if __name__ == '__main__':
    main()
