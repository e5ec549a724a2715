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


def test_imported_names_are_public():
    "Every project name imported from another module is in that module's `__all__`."
    import importlib
    missing = []
    for p in sorted(PKG.glob('*.py')):
        if p.stem == '_modidx': continue
        for m, names in project_imports(p):
            if m == p.stem or not names or not (PKG / f'{m}.py').exists(): continue
            mod = importlib.import_module(f'lottery_nb.{m}')
            home = lambda n: getattr(getattr(mod, n, None), '__module__', mod.__name__)
            defined_here = [n for n in names if n != '*' and home(n) == mod.__name__]
            missing += [f'{p.stem} <- {m}: {n}' for n in defined_here if n not in getattr(mod, '__all__', [])]
    assert missing == []


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
