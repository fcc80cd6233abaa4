"""Names at the crate root with all features: items of `pub use` (a
re-exported crate counts as one), `pub mod`, and `pub (async) fn` of lib.rs."""
import re, sys
text = open(sys.argv[1] + '/src/lib.rs').read()
text = '\n'.join(l for l in text.split('\n') if not l.lstrip().startswith('//'))
names = []
# only top-level items (no leading indentation)
for m in re.finditer(r'^pub use ([^;]+);', text, re.M):
    body = m.group(1).replace('\n', ' ')
    if '{' in body:
        inner = body[body.index('{') + 1: body.rindex('}')]
        names += [i.strip().split(' as ')[-1].split('::')[-1] for i in inner.split(',') if i.strip()]
    else:
        names.append(body.strip().split('::')[-1])
names += re.findall(r'^pub mod (\w+)', text, re.M)
names += re.findall(r'^pub (?:async )?fn (\w+)', text, re.M)
print(len(names), sorted(names))
