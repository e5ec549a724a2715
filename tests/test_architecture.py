"The shape of the package, read from its own source: the import graph of `lottery_nb` has no cycle."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'lottery_nb'


def project_imports(path: Path) -> list:
    "(module, names) for every import of a `lottery_nb` module in `path`, module level or in functions."
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1: mod = node.module or ''
            elif node.level == 0 and (node.module or '').startswith('lottery_nb.'):
                mod = node.module[len('lottery_nb.'):]
            elif node.level == 0 and node.module == 'lottery_nb': mod = ''
            else: continue
            names = [a.name for a in node.names]
            if mod == '': out += [(n, []) for n in names]   # `from . import data`
            else: out.append((mod.split('.')[0], names))
        elif isinstance(node, ast.Import):
            out += [(a.name.split('.')[1], []) for a in node.names if a.name.startswith('lottery_nb.')]
    return out


def import_graph() -> dict:
    mods = {p.stem for p in PKG.glob('*.py')} - {'__init__', '_modidx'}
    return {m: {t for t, _ in project_imports(PKG / f'{m}.py') if t in mods and t != m} for m in sorted(mods)}


def find_cycle(graph: dict):
    "One cycle as a list of modules (first repeated at the end), or None."
    state, stack = {}, []
    def visit(m):
        state[m] = 1; stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1: return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)): return c
        state[m] = 2; stack.pop()
    for m in graph:
        if m not in state and (c := visit(m)): return c


def test_graph_is_read():
    g = import_graph()
    assert {'config', 'claims', 'paths', 'connectivity', 'cli'} <= set(g)
    assert 'claims' in g['paths'] and 'paths' in g['connectivity']   # real edges are seen (relative imports)


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycle():
    g = import_graph()
    assert find_cycle(g) is None, f"import cycle: {' -> '.join(find_cycle(g))}"


def test_claims_is_pure_numbers():
    "claims is at the bottom of the graph: it imports nothing from the project but config and stats."
    assert import_graph()['claims'] <= {'config', 'stats'}


def private_imports() -> list:
    "'module <- other: name' for every private name (one underscore) imported from another project module."
    mods = {p.stem for p in PKG.glob('*.py')} - {'_modidx'}
    return [f'{p.stem} <- {m}: {n}' for p in sorted(PKG.glob('*.py')) if p.stem != '_modidx'
            for m, names in project_imports(p) if m in mods and m != p.stem
            for n in names if n.startswith('_') and not n.startswith('__')]


def test_no_private_name_crosses_modules():
    "A name another module needs is public (no underscore, in the defining module's `__all__`)."
    assert private_imports() == []


def user_code() -> dict:
    "name -> Python source of what a user reads and copies: the README's code blocks, the docs home, tutorials, figures."
    import json, re
    root = PKG.parent
    out = {'README.md': '\n'.join(re.findall(r'```python\n(.*?)```', (root / 'README.md').read_text(), re.S))}
    for nb in [root / 'nbs' / 'index.ipynb', *sorted((root / 'nbs' / 'tutorials').glob('*.ipynb')),
               *sorted((root / 'nbs' / 'figures').glob('*.ipynb'))]:
        cells = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        # IPython's magics and shell lines are not Python
        out[nb.name] = '\n'.join(l for c in cells for l in c.split('\n') if not l.lstrip().startswith(('%', '!')))
    return out


def user_imports(sources: dict) -> list:
    "'source: module.name' for every `from lottery_nb.<module> import <name>` in `sources`."
    out = []
    for where, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('lottery_nb.'):
                out += [f"{where}: {node.module.split('.', 1)[1]}.{a.name}" for a in node.names]
    return out


# imports of names that are not in their module's `__all__`: none since the second docs pass of issue 26 (the tutorial
# imports `figures_dir` and `FIGURES` from `figures`, fig2 `mean_std` from `stats`, their home modules)
NOT_YET_PUBLIC = set()


def test_user_code_imports_only_public_names():
    """What the README, the tutorials and the figure notebooks import is public: in its module's `__all__` (issue 26:
    `__all__` lists what a user calls). Internal names that other modules use are exported without an underscore
    (`#| exporti`: importable, not in `__all__`); no private `_name` crosses modules (above)."""
    import importlib
    found = user_imports(user_code())
    assert len(found) > 20, found   # the sources are read
    missing = []
    for f in found:
        mod, name = f.split(': ')[1].rsplit('.', 1)
        if name not in importlib.import_module(f'lottery_nb.{mod}').__all__: missing.append(f)
    assert set(missing) <= NOT_YET_PUBLIC, sorted(set(missing) - NOT_YET_PUBLIC)


def test_user_imports_are_read(tmp_path):
    text = 'from lottery_nb.data import get_data\nimport lottery_nb.models as m\nfrom lottery_nb.connectivity import (a,\n  b)\n'
    assert user_imports({'x': text}) == ['x: data.get_data', 'x: connectivity.a', 'x: connectivity.b']


def test_private_import_check_can_fail(tmp_path):
    src = tmp_path / 'x.py'
    src.write_text('from .points import _label, check_points\nfrom lottery_nb.config import LotteryError\n')
    assert project_imports(src) == [('points', ['_label', 'check_points']), ('config', ['LotteryError'])]


def long_functions(paths, limit: int = 40) -> list:
    "'module.function (n lines)' for every function longer than `limit` lines, def line to last line."
    out = []
    for p in paths:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit:
                out.append(f'{p.stem}.{n.name} ({n.end_lineno - n.lineno + 1} lines)')
    return out


def long_line_share(paths, width: int = 110) -> float:
    "The share of lines longer than `width` characters in `paths`."
    lines = [l for p in paths for l in p.read_text().split('\n')]
    return sum(len(l) > width for l in lines) / len(lines)


def module_paths() -> list:
    return [p for p in sorted(PKG.glob('*.py')) if p.stem != '_modidx']


def test_no_function_over_40_lines():
    "Issue 18: a function a new engineer can read at once; open_lth has two over 50."
    assert long_functions(module_paths()) == []


def test_at_most_one_percent_of_lines_over_110():
    "Issue 18: what is left over 110 characters is what nbdev writes itself (`__all__`, module docstrings)."
    share = long_line_share(module_paths())
    assert share <= 0.01, f'{share:.1%} of the lines of lottery_nb are longer than 110 characters'


def test_shape_checks_can_fail(tmp_path):
    src = tmp_path / 'x.py'
    src.write_text('def f():\n' + '    x = 1\n' * 41 + 'def g(): return ' + '1 + ' * 40 + '1\n')
    assert long_functions([src]) == ['x.f (42 lines)']
    assert long_line_share([src], 110) == 1 / 44


def inline_int_checks(paths) -> list:
    "'module:line' for every integer check written out inline instead of `config.is_int`."
    import re
    pat = re.compile(r'isinstance\((\w+), bool\) or not isinstance\(\1, (int|\(int, np\.integer\))\)')
    return [f'{p.stem}:{i}' for p in paths for i, l in enumerate(p.read_text().split('\n'), 1) if pat.search(l)]


def test_integer_checks_use_is_int(tmp_path):
    "Issue 18: one integer check (`config.is_int`), not a dozen inline copies."
    assert inline_int_checks(module_paths()) == []
    src = tmp_path / 'x.py'
    src.write_text('ok = is_int(n)\nif isinstance(n, bool) or not isinstance(n, (int, np.integer)): pass\n')
    assert inline_int_checks([src]) == ['x:2']
