"""Import graph of src/: one node per module file; edges from `use crate::…`,
`use super::…` and inline `crate::…` paths outside comments and test modules.
Prints cycles (strongly connected components of size > 1) and edges back up to
the crate root (a path `crate::Name` naming a root item, not a module)."""
import os, re, sys
root = sys.argv[1]
src = os.path.join(root, 'src')
mods = {}
for d, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith('.rs'): continue
        rel = os.path.relpath(os.path.join(d, f), src)[:-3].split(os.sep)
        if rel[-1] == 'mod': rel = rel[:-1]
        if rel == ['lib']: rel = []
        mods[tuple(rel)] = os.path.join(d, f)
def resolve(parts):
    for n in range(len(parts), 0, -1):
        if tuple(parts[:n]) in mods: return tuple(parts[:n])
    return None
edges = set(); back = set()
for m, path in mods.items():
    text = open(path).read()
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    code = '\n'.join(l.split('//')[0] for l in text.split('\n'))
    # expand `use crate::a::{b, c::d}` one level
    paths = []
    for um in re.finditer(r'use (crate|super)::([\w:]*)\{([^}]*)\}', code):
        base = um.group(2).strip(':').split('::') if um.group(2) else []
        for item in um.group(3).split(','):
            item = item.strip().split(' as ')[0]
            if item: paths.append((um.group(1), base + item.split('::')))
    for pm in re.finditer(r'\b(crate|super)::([\w:]+)', code):
        paths.append((pm.group(1), pm.group(2).strip(':').split('::')))
    for kind, parts in paths:
        parts = [p for p in parts if p and p != 'self']
        if kind == 'super':
            # super of a file module m is m[:-1]; of a mod.rs module also m[:-1]
            parts = list(m[:-1]) + parts
        if not parts: continue
        target = resolve(parts)
        if target is None:
            if kind == 'crate' and parts[0] not in ('spec',) and not parts[0][0].islower():
                back.add((m, parts[0]))
            elif kind == 'crate' and parts[0] in ('refresh',):
                back.add((m, parts[0]))
            continue
        if target != m and target != ():
            edges.add((m, target))
# SCCs (Tarjan)
import itertools
graph = {m: set() for m in mods}
for a, b in edges: graph[a].add(b)
index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
for v in graph:
    if v not in index: strong(v)
name = lambda m: '::'.join(m) or 'lib'
print(f"modules {len(mods)}, edges {len(edges)}")
print(f"cycles {len(sccs)}")
for c in sccs: print("  cycle:", sorted(name(x) for x in c))
print(f"edges back up to the crate root {len(back)}")
for a, b in sorted(back): print(f"  {name(a)} -> crate::{b}")
