"""Type parameters of the public functions of the flow doors: lib.rs's free
fns, Policy's methods, TokenService's and AccessVerifier's. Counts named type
parameters (not lifetimes) plus `impl Trait` arguments."""
import re, sys, os
root = sys.argv[1]
files = [f for f in ['src/lib.rs', 'src/service.rs', 'src/policy.rs', 'src/flows/policy.rs', 'src/verifier.rs']
         if os.path.exists(os.path.join(root, f))]
total = 0
for f in files:
    text = open(os.path.join(root, f)).read()
    for m in re.finditer(r'pub (?:async )?fn (\w+)(<[^>(]*>)?\(([^)]*)\)', text):
        name, gen, args = m.group(1), m.group(2) or '', m.group(3)
        params = [p.strip() for p in gen.strip('<>').split(',') if p.strip() and not p.strip().startswith("'")]
        impls = len(re.findall(r'\bimpl\b', args))
        n = len(params) + impls
        if n:
            print(f"  {f}: {name}: {n}")
            total += n
print("total", total)
