"""Wrap the lines longer than 110 characters in the exported code cells of `nbs/*.ipynb`, and nothing else.

Only long lines change, in the project's compact style (no formatter runs over whole cells):
- code is split inside brackets: after a comma, before an operator or keyword (`and`, `or`, `if`, `else`,
  `for`, `+`, ...) or after an opening bracket (hanging indent); the continuation aligns under the opening
  bracket, under the string it continues, or 4 spaces in. Split points come from `tokenize`; of the possible
  first splits, the one whose completion takes the fewest lines wins, then the shallowest. Where a line has no
  bracket, one goes around an expression (a tuple, `a or b`, `x if c else y`, an import list).
- long string literals (one-line docstrings, f-string messages) become adjacent literals (implicit
  concatenation), split at a space outside f-string replacement fields, in parentheses where they are not
  inside brackets already.
- long comment lines are wrapped at the same indentation (the words past the width go to the next line of the
  same comment); a long trailing comment moves above its line, except a docment (the comment of a parameter,
  a return annotation or a class field), which moves above its parameter as comment lines:
  `fastcore.docments` reads the comment lines above a parameter that has no comment of its own as its docment
  (joined by newlines), and `show_doc` (nbdev 2.4 / fastcore 1.14 render it with `DocmentText`, as code, not a
  table) prints such a docment as `# ` lines under the parameter. A docment on the `def` line cannot move
  (comments above the `def` belong to no parameter): such a line is reported, to be shortened by hand.
Guard: a cell changes only if `ast.dump` of the cell before and after is equal and the docments of every
function and class in it (read by fastcore's own `_param_locs`/`_get_comment`, as `docments(f, full=False)`
reads them) are equal up to whitespace; otherwise the cell stays as it is and is reported. Running it twice
changes nothing the second time. Lines it cannot wrap (multi-line docstrings, def-line docments) are listed.

Usage: python scripts/wrap_lines.py [--dry-run] [--width 110] [nbs/XX.ipynb ...]  (default: every notebook)"""
import argparse, ast, io, json, re, sys, textwrap, tokenize
from pathlib import Path
from fastcore.docments import _clean_comment, _get_comment, _param_locs, _tokens

W = 110
OPEN, CLOSE = '([{', ')]}'
BREAK_BEFORE = {'and', 'or', 'if', 'else', 'for', '+', '-', '|', '==', '!=', '<=', '>=', '<', '>'}
SKIP = (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
EXPORT_RE = re.compile(r'^\s*#\|\s*exports?\s*$', re.M)

def toks(src):
    "Tokens of `src`, or None when it does not tokenize."
    try: return list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError): return None

def indent_of(line): return len(line) - len(line.lstrip(' '))

# ---- strings -----------------------------------------------------------------------------------------------

def str_parts(s):
    "`s` (one string token) as (prefix, quote, body), or None for a triple-quoted string over several lines."
    m = re.match(r'([A-Za-z]*)(\'\'\'|"""|\'|")', s)
    pre, q = m.group(1), m.group(2)
    if '\n' in s or not s.endswith(q) or len(s) < len(pre) + 2 * len(q): return None
    return pre, q, s[len(pre) + len(q):len(s) - len(q)]

def str_cuts(pre, body):
    "Offsets in `body` after a space, outside escapes and f-string replacement fields: where it may split."
    f, cuts, i, n = 'f' in pre.lower(), [], 0, len(body)
    while i < n:
        c = body[i]
        if c == '\\': i += 2; continue  # also in a raw string: a backslash keeps the next character with it
        if f and c in '{}' and body[i:i + 2] in ('{{', '}}'): i += 2; continue
        if f and c == '{': i = skip_field(body, i); continue
        i += 1
        if c == ' ' and i < n and body[i] != ' ': cuts.append(i)
    return cuts

def skip_field(body, i):
    "The offset after the replacement field that starts at `body[i] == '{'`."
    depth, q = 0, None
    while i < len(body):
        c = body[i]
        if q:
            if c == q: q = None
        elif c in '\'"': q = c
        elif c in '{[(': depth += 1
        elif c in '}])':
            depth -= 1
            if depth == 0: return i + 1
        i += 1
    return i

def literal(pre, q, body):
    "A literal with `pre` and quote `q` around `body`; an f-string piece without braces loses its `f`."
    if 'f' in pre.lower() and '{' not in body and '}' not in body: pre = pre.replace('f', '').replace('F', '')
    return f'{pre}{q}{body}{q}'

# ---- split points on one line ------------------------------------------------------------------------------

def logical_span(ts, i):
    "First and last line of the logical line that holds line `i`."
    start = None
    for t in ts:
        if t.type == tokenize.NEWLINE:
            if start is not None and start <= i <= t.start[0]: return start, t.start[0]
            start = None
        elif start is None and t.type not in SKIP and t.type != tokenize.COMMENT: start = t.start[0]
    return None

def bracket_info(sig):
    "For each opening bracket: (column its contents line up at, whether it holds a comma of its own)."
    info, stack, target = {}, [], []
    for k, t in enumerate(sig):
        if t.type == tokenize.OP and t.string in OPEN and k + 1 < len(sig):
            nx = sig[k + 1]
            info[t.start] = [t.end[1] if nx.start[0] == t.start[0] else nx.start[1], False]
            stack.append(t.start); target.append(False)
        elif t.type == tokenize.OP and t.string in CLOSE and stack: stack.pop(); target.pop()
        elif stack and t.string == 'for': target[-1] = True
        elif stack and t.string == 'in': target[-1] = False
        elif stack and t.string == ',' and not target[-1]: info[stack[-1]][1] = True
    return info

def candidates(lines, ts, i):
    "Ways to split line `i` once, as (its new lines, kind, depth, column), each with a first line that fits."
    line, out, stack, target = lines[i - 1], [], [], []
    sig = [t for t in ts if t.type not in SKIP and t.type != tokenize.COMMENT]
    info = bracket_info(sig)
    def add(first, rest, kind, depth, col):
        first = first.rstrip()
        if len(first) <= W and first.strip() and rest.strip(): out.append(([first, rest], kind, depth, col))
    for k, t in enumerate(sig):
        nxt = sig[k + 1] if k + 1 < len(sig) else None
        prv = sig[k - 1] if k else None
        on, d = t.start[0] == i and t.end[0] == i, len(stack)
        if on and stack and t.type == tokenize.STRING:  # split a literal inside brackets, under its own start
            add_str(add, line, t, d + (0.5 if info[stack[-1].start][1] else 0), t.start[1], False)
        elif on and not stack and t.type == tokenize.STRING:  # outside brackets: parenthesise it
            if not (prv and prv.type == tokenize.STRING) and not (nxt and nxt.type == tokenize.STRING):
                add_str(add, line, t, 0, t.start[1] + 1, True)
        if on and stack and t.type in (tokenize.NAME, tokenize.OP) and t.string in BREAK_BEFORE and prv and \
                prv.end[0] == i and not (prv.type == tokenize.OP and prv.string in OPEN + ',') and \
                prv.string not in BREAK_BEFORE and not target[-1]:
            a, commas = info[stack[-1].start]  # an operator in an item is deeper than the commas around it
            add(line[:t.start[1]], ' ' * a + line[t.start[1]:].lstrip(), 'op', d + (0.5 if commas else -0.5),
                t.start[1])
        if t.type == tokenize.OP and t.string in OPEN: stack.append(t); target.append(False)
        elif t.type == tokenize.OP and t.string in CLOSE and stack: stack.pop(); target.pop()
        elif stack and t.string == 'for': target[-1] = True
        elif stack and t.string == 'in': target[-1] = False
        if not on or not nxt or nxt.start[0] != i: continue
        if stack and t.string == ',' and nxt.string not in CLOSE and not target[-1]:
            add(line[:t.end[1]], ' ' * info[stack[-1].start][0] + line[nxt.start[1]:], 'comma', len(stack),
                t.end[1])
        if t.type == tokenize.OP and t.string in OPEN and nxt.string not in CLOSE:
            a = indent_of(line) + 4
            if a < nxt.start[1]:
                add(line[:t.end[1]], ' ' * a + line[nxt.start[1]:], 'hang', len(stack), t.end[1])
    return out

def add_str(add, line, t, depth, col, paren):
    "Offer the rightmost split of string token `t` whose first line fits (in parentheses when `paren`)."
    p = str_parts(t.string)
    if not p: return
    pre, q, body = p
    head, tail = line[:t.start[1]] + ('(' if paren else ''), (')' if paren else '') + line[t.end[1]:]
    fits = [c for c in str_cuts(pre, body) if len(head + literal(pre, q, body[:c])) <= W]
    if not fits: return
    def rest(c): return ' ' * col + literal(pre, q, body[c:]) + tail
    # a cut after a clause (', ', '; ', ...) in the second half where the rest then fits one line (no line
    # more, no one-word tail), else one not much to the left of the rightmost cut that fits, else that one
    clause = [c for c in fits if body[c - 2] in ',;:.'
              and not re.search(r'\b(etc|e\.g|i\.e|vs)\. $', body[:c])]
    one = [c for c in clause if c >= 0.5 * fits[-1] and len(rest(c)) <= W]
    c = (one or [c for c in clause if c >= 0.75 * fits[-1]] or fits)[-1]
    add(head + literal(pre, q, body[:c]), rest(c), 'str', depth, t.start[1] + c)

# ---- one long line -----------------------------------------------------------------------------------------

def parenthesised(src, i):
    "Versions of `src` with one expression (or import list) on line `i` in parentheses: [(src, start, end)]."
    try: tree = ast.parse(src)
    except SyntaxError: return []
    lines, spans = src.split('\n'), []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.lineno == n.end_lineno == i and '(' not in lines[i - 1]:
            spans.append((lines[i - 1].index(' import ') + len(' import '), n.end_col_offset))
        if not isinstance(n, ast.stmt): continue
        # not the condition of a one-line `if x: y`, whose `y` would follow the wrapped condition
        one_line = getattr(n, 'body', None) and isinstance(n.body, list) and n.body[0].lineno == n.lineno
        vals = [getattr(n, f, None) for f in ('value', 'exc') + (() if one_line else ('test', 'iter'))]
        vals += [t for t in getattr(n, 'targets', []) if isinstance(t, ast.Tuple)]
        for v in vals:
            if isinstance(v, (ast.Tuple, ast.BoolOp, ast.IfExp, ast.BinOp)) and \
                    v.lineno == v.end_lineno == i and lines[i - 1][v.col_offset] not in OPEN:
                spans.append((v.col_offset, v.end_col_offset))
    l = lines[i - 1]
    return [('\n'.join(lines[:i - 1] + [l[:a] + '(' + l[a:b] + ')' + l[b:]] + lines[i:]), a, b + 1)
            for a, b in sorted(set(spans), key=lambda s: s[0] - s[1])]

def split_code(src, i, look=True):
    "`src` with long line `i` split in two, or None; `look`: pick the split by how its completion comes out."
    cands = []
    # a split inside added parentheses counts as one level shallower than it is
    for base, a, b in [(src, -1, 10 ** 6)] + (parenthesised(src, i) if look else []):
        ts = toks(base)
        span = ts and logical_span(ts, i)
        if not span: continue
        lines = base.split('\n')
        for new, kind, depth, col in candidates(lines, [t for t in ts if span[0] <= t.start[0] <= span[1]],
                                                i):
            if not a < col <= b: continue
            extra = 0 if a < 0 else -0.75
            cands.append(('\n'.join(lines[:i - 1] + new + lines[i:]), (kind == 'hang', depth + extra, -col)))
    best = None
    for s, key in sorted(cands, key=lambda c: c[1])[:24 if look else 1]:
        if toks(s) is None: continue
        if not look: return s
        done, j = s, i + 1
        for _ in range(40):  # greedy completion: the remaining long line is the one after the split
            if j > len(done.split('\n')) or len(done.split('\n')[j - 1]) <= W: break
            nxt = split_code(done, j, look=False)
            if nxt is None: break
            done, j = nxt, j + 1
        dl = done.split('\n')
        score = (sum(len(l) > W for l in dl[i - 1:j]), len(dl), key)
        if best is None or score < best[0]: best = (score, s)
    return best and best[1]

def wrap_comment(ind, text, marker='# '):
    "Comment lines at indentation `ind` holding `text`."
    body = textwrap.wrap(text, W - ind - len(marker), break_long_words=False, break_on_hyphens=False)
    return [' ' * ind + marker + b for b in body] or [' ' * ind + marker.rstrip()]

def comment_only(ts):
    "Lines that hold nothing but a comment: {line: comment token}."
    code = {ln for t in ts if t.type not in SKIP and t.type != tokenize.COMMENT
            for ln in range(t.start[0], t.end[0] + 1)}
    return {t.start[0]: t for t in ts if t.type == tokenize.COMMENT and t.start[0] not in code}

def wrap_comment_line(lines, ts, i, c):
    "Wrap comment line `i`: the words past the width go to the front of the next line of the same comment."
    text = c.string[1:]
    marker, ind = '# ' if text.startswith(' ') else '#', c.start[1]
    new = wrap_comment(ind, text.strip(), marker)
    if len(new) < 2: return None
    below = next((k for k in range(i + 1, len(lines) + 1) if k not in comment_only(ts)), None)
    if below in doc_lines('\n'.join(lines)): return None  # a docment above its parameter: keep it one line
    nxt = comment_only(ts).get(i + 1)
    rest = ' '.join(l.strip()[len(marker):].strip() for l in new[1:])
    ntext = nxt.string[1:].strip() if nxt else ''
    if nxt and nxt.start[1] == ind and ntext and not ntext.startswith(('|', '-', '*')) and \
            not re.match(r'\d+[.)] ', ntext):
        return '\n'.join(lines[:i - 1] + [new[0], ' ' * ind + marker + rest + ' ' + ntext] + lines[i + 1:])
    return '\n'.join(lines[:i - 1] + new + lines[i:])

def doc_lines(src):
    "Lines of parameters, return annotations and class fields: a trailing comment there is a docment."
    try: tree = ast.parse(src)
    except SyntaxError: return set()
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            out |= {x.lineno for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg] if x}
            if n.returns: out.add(n.returns.lineno)
        elif isinstance(n, ast.ClassDef): out |= {x.lineno for x in n.body if isinstance(x, ast.AnnAssign)}
    return out

def wrap_line(src, i):
    "`src` with line `i` shorter or split (one step), or None when this tool cannot wrap it."
    ts = toks(src)
    if ts is None: return None
    lines, line = src.split('\n'), src.split('\n')[i - 1]
    on = [t for t in ts if t.start[0] == i and t.type not in SKIP]
    com = [t for t in on if t.type == tokenize.COMMENT]
    code = [t for t in on if t.type != tokenize.COMMENT]
    if com and com[0].string.startswith('#|'): return None
    if not on or on[0].start[1] != indent_of(line): return None  # the line continues a multi-line string
    if com and not code: return wrap_comment_line(lines, ts, i, com[0])
    if com:  # a trailing comment: above its line (a docment above its parameter)
        c = com[0]
        if i in doc_lines(src) and code[0].string in ('def', 'async', 'class'): return None
        marker = '# ' if c.string[1:].startswith(' ') else '#'
        above = wrap_comment(indent_of(line), c.string[1:].strip(), marker)
        if i in doc_lines(src) and len(above) > 1: return None  # show_doc would print it as two comment lines
        return '\n'.join(lines[:i - 1] + above + [line[:c.start[1]].rstrip()] + lines[i:])
    return split_code(src, i)

# ---- guard -------------------------------------------------------------------------------------------------

def param_locs(n, s, start, args_kwargs):
    "{line in `s`: name} of the parameters (or class fields) of node `n`, whose source `s` starts at `start`."
    if isinstance(n, ast.ClassDef):
        return {x.lineno - start + 1: x.target.id for x in n.body
                if isinstance(x, ast.AnnAssign) and isinstance(x.target, ast.Name)}
    try: return _param_locs(s, returns=True, args_kwargs=args_kwargs) or {}
    except SyntaxError: return {}

def docs_of(src):
    """Docments of every function and class in `src`, read as `fastcore.docments.docments` reads them: with
    its default `args_kwargs=False` (a `**kwargs` comment can become the return's docment) and with `True`."""
    tree, lines, out = ast.parse(src), src.split('\n'), {}
    for k, n in enumerate(ast.walk(tree)):
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): continue
        start = min([d.lineno for d in n.decorator_list] + [n.lineno])
        s = textwrap.dedent('\n'.join(lines[start - 1:n.end_lineno]))
        c = {o.start[0]: _clean_comment(o.string) for o in _tokens(s) if o.type == tokenize.COMMENT}
        for ak in (False, True):
            p, d = param_locs(n, s, start, ak), {}
            for ln, v in p.items():
                if v not in d: d[v] = _get_comment(ln, v, c, p)
            out[(k, n.name, ak)] = {v: ' '.join(x.split()) if x else x for v, x in d.items()}
    return out

def guard(old, new):
    "Why `new` may not replace `old` (None: it may)."
    try: a, b = ast.parse(old), ast.parse(new)
    except SyntaxError as e: return f'does not parse after wrapping: {e}'
    if ast.dump(a) != ast.dump(b): return 'the AST changes'
    do, dn = docs_of(old), docs_of(new)
    def same(a, b): return all(a.get(v) == b.get(v) for v in set(a) | set(b))  # no entry: no docment
    bad = sorted({k[1] for k in set(do) | set(dn) if not same(do.get(k, {}), dn.get(k, {}))})
    return f'the docments of {", ".join(bad)} change' if bad else None

# ---- cells and notebooks -----------------------------------------------------------------------------------

def why_not(src, i):
    "Why `wrap_line` cannot wrap line `i` of `src`."
    ts = toks(src) or []
    if any(t.type == tokenize.STRING and t.start[0] < i <= t.end[0] for t in ts) or \
            any(t.type == tokenize.STRING and t.start[0] == i < t.end[0] for t in ts):
        return 'in a multi-line string: its value would change'
    first = next((t for t in ts if t.start[0] == i and t.type not in SKIP), None)
    if i in doc_lines(src) and first and first.string in ('def', 'async', 'class'):
        return "a docment on the def line: only its own line keeps it; shorten it by hand"
    if first and (i in doc_lines(src) or first.type == tokenize.COMMENT):
        return 'a docment too long for one comment line (show_doc would print two): shorten it by hand'
    return 'no split point'

def wrap_cell(src):
    "(wrapped `src`, {line still too long: why}, why the whole cell was refused or None)."
    try: ast.parse(src)
    except SyntaxError: return src, {l: 'the cell does not parse' for l in src.split('\n') if len(l) > W}, 0
    out, stuck = src, {}
    for _ in range(2000):
        lines = out.split('\n')
        i = next((k for k, l in enumerate(lines, 1) if len(l) > W and l not in stuck), None)
        if i is None: break
        new = wrap_line(out, i)
        why = why_not(out, i) if new is None or new == out else guard(out, new)
        if why: stuck[lines[i - 1]] = why
        else: out = new
    why = guard(src, out) if out != src else None
    if why: out = src
    return out, {l: stuck.get(l, why) for l in out.split('\n') if len(l) > W}, why

def wrap_nb(path, dry=False):
    "Wrap the exported cells of `path`: (long lines wrapped, lines added, {line left: why}, refused cells)."
    nb = json.loads(Path(path).read_text())
    wrapped, added, left, refused = 0, 0, {}, []
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] != 'code' or not EXPORT_RE.search(src): continue
        new, long, why = wrap_cell(src)
        left.update(long)
        if why: refused.append((src.split('\n')[1][:80] if '\n' in src else src[:80], why))
        if new == src: continue
        wrapped += sum(len(l) > W for l in src.split('\n')) - len(long)
        added += new.count('\n') - src.count('\n')
        ls = new.split('\n')
        cell['source'] = [l + '\n' for l in ls[:-1]] + ([ls[-1]] if ls[-1] else [])
    if (wrapped or added) and not dry:
        Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return wrapped, added, left, refused

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('nbs', nargs='*', help='notebooks (default: nbs/*.ipynb)')
    ap.add_argument('--dry-run', action='store_true', help='report, write nothing')
    ap.add_argument('--width', type=int, default=110, help='longest allowed line')
    a = ap.parse_args(argv)
    global W; W = a.width
    paths = a.nbs or sorted(str(p) for p in Path(__file__).resolve().parent.parent.glob('nbs/*.ipynb'))
    tot = 0
    for p in paths:
        n, added, left, refused = wrap_nb(p, a.dry_run)
        tot += n
        print(f'{Path(p).name}: {n} long lines wrapped (+{added} lines), {len(left)} left')
        for l, why in left.items(): print(f'    cannot wrap ({len(l)} chars; {why}): {l.strip()[:90]}')
        for s, why in refused: print(f'    refused cell ({why}): {s}')
    print(f'total: {tot} long lines wrapped')

if __name__ == '__main__': main()
