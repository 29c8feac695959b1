"""Do two reproduction (or `tanas run`) output directories hold the same artifacts?

    python3 same-artifacts.py DIR_A DIR_B

Compares `artifacts/store/` and the report's JSON (every study directory), or everything a
`tanas run` made but the executors' own files (`slurm/`, `jobs/`), file by file: the same
files; JSON and JSON-lines equal once the wall-clock fields are dropped (keys ending in
`seconds`, `images_per_second`; and a store stamp's `files`, the sizes and hashes of files
that carry such fields, which are compared themselves); burn's checkpoint records (`*.mpk`)
the same size (they
carry random parameter ids; the weights themselves are compared in `weights.safetensors`);
every other file byte for byte. Prints the first differences and exits 1 if there are any.
"""
import json
import os
import sys

SKIP = {'run.json', 'REPORT.md', 'data.json', 'tasks.json', 'slurm', 'jobs', '.tanas-lock'}


def timeless(v):
    if isinstance(v, dict):
        return {k: timeless(x) for k, x in v.items()
                if not (k.endswith('seconds') or k == 'images_per_second')}
    if isinstance(v, list):
        return [timeless(x) for x in v]
    return v


def files(root):
    out = set()
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP and not x.startswith('.')]
        rel = os.path.relpath(d, root)
        for n in names:
            if n in SKIP or n.endswith('.lock') or n.startswith('.'):
                continue
            p = os.path.normpath(os.path.join(rel, n))
            # Under artifacts/ only the store: each stage's own directory holds copies and
            # paths of this output directory.
            if p.startswith('artifacts' + os.sep) and not p.startswith(os.path.join('artifacts', 'store')):
                continue
            out.add(p)
    return out


def load(path):
    with open(path, 'rb') as f:
        data = f.read()
    if path.endswith('.json'):
        value = timeless(json.loads(data))
        if os.path.basename(path) == 'stamp.json' and isinstance(value, dict):
            value.pop('files', None)
        return value
    if path.endswith('.jsonl'):
        return [timeless(json.loads(line)) for line in data.splitlines() if line.strip()]
    if path.endswith('.mpk'):
        return len(data)
    return data


def main(a, b):
    fa, fb = files(a), files(b)
    problems = [f'only in {a}: {p}' for p in sorted(fa - fb)]
    problems += [f'only in {b}: {p}' for p in sorted(fb - fa)]
    for p in sorted(fa & fb):
        if load(os.path.join(a, p)) != load(os.path.join(b, p)):
            problems.append(f'differs: {p}')
    for line in problems[:10]:
        print(line)
    if problems:
        print(f'{len(problems)} differences between {a} and {b}')
        return 1
    print(f'same artifacts: {len(fa)} files')
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:3]))
