#!/usr/bin/python3
"""Generate the data of the paper-regime experiment (issue #16): a broad
arithmetic pretraining corpus (stage 0) and small sets of worked solutions
from template families held out of it (stage 1).

Run from anywhere:  /usr/bin/python3 scripts/gen_paper_data.py [--out DIR]
Standard library only. Fully deterministic (fixed seeds, gzip header without
file name or timestamp): running it again rewrites byte-identical files.
It reuses the 20 problem templates of scripts/gen_arith.py for stage 0.

Outputs (default DIR = data/paper under the repository root):
  stage0.jsonl.gz      pretraining corpus, {"text"} rows (every token
                       supervised), each a document of items separated by a
                       blank line: word problems of 23 families with the
                       bare answer ("Question: ...\\nAnswer: 42"), arithmetic
                       questions, lists of bare equations ("17 + 25 = 42")
                       and chains of equations; NO worked solutions and no
                       "####" anywhere
  stage0_eval.jsonl.gz held-out rows of the same mix (from 1,000 items)
  stage0b.jsonl.gz, stage0b_eval.jsonl.gz
                       the same documents as {"prompt","completion"} rows
                       split after their first line: encoded WITHOUT the
                       BOS that {"text"} rows get, like stage 1's rows (the
                       second pretraining phase; see README.md)
  stage1_pool.jsonl.gz 4,096 problems of the 8 held-out stage-1 families,
                       one worked solution each ({"prompt","completion"},
                       completion ending "#### N" like data/arith)
  stage1_train_N.jsonl.gz
                       the first N rows of the pool, N = 128, 256, 512,
                       1,024, 2,048 (nested: each a prefix of the next)
  stage1_eval.jsonl.gz 500 problems of the same 8 families, prompts
                       disjoint from the pool
  README.md            counts, seeds, sha256
"""

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import re

SEED0 = 20250316           # stage 0
SEED1 = 20250317           # stage 1
N_STAGE0 = 240000          # items (word problems, questions, equation lists, chains)
N_STAGE0_EVAL = 1000       # items of the held-out stage-0 rows
DOC_CHARS = 300            # stage-0 rows pack items up to at least this many characters
N_POOL = 4096
SUBSETS = (128, 256, 512, 1024, 2048)
N_EVAL1 = 500
# stage 0 mix (share of rows)
MIX0 = (("word", 0.40), ("question", 0.20), ("equations", 0.20), ("chain", 0.20))
# stage 1 difficulty levels (share of problems)
LEVEL_SHARE1 = (0.35, 0.35, 0.30)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_spec = importlib.util.spec_from_file_location(
    "gen_arith", os.path.join(ROOT, "scripts", "gen_arith.py"))
A = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(A)

people, cnt, add_eq, mul_eq, sub_eq = A.people, A.cnt, A.add_eq, A.mul_eq, A.sub_eq
carries, borrows = A.carries, A.borrows
OBJECTS, CONTAINERS = A.OBJECTS, A.CONTAINERS

# --------------------------------------------------------------------------
# Stage 0: answers without worked solutions


def rand_operands(rng, op):
    """Operands of one bare equation: 1-3 digits, non-negative results."""
    if op == "*":
        k = rng.random()
        if k < 0.5:
            return rng.randint(0, 12), rng.randint(0, 12)
        if k < 0.85:
            return rng.randint(2, 9), rng.randint(10, 99)
        return rng.randint(2, 9), rng.randint(100, 300)
    digits = rng.choice((1, 1, 2, 2, 2, 3, 3))
    hi = (9, 99, 999)[digits - 1]
    a, b = rng.randint(0, hi), rng.randint(0, hi)
    if op == "-" and a < b:
        a, b = b, a
    return a, b


def equation(rng, op=None):
    op = op or rng.choice("++--*")
    a, b = rand_operands(rng, op)
    return "%d %s %d = %d" % (a, op, b, A._OPS[op](a, b))


def s0_equations(rng):
    return "\n".join(equation(rng) for _ in range(rng.randint(3, 8)))


def s0_chain(rng):
    """A computation chain: each line starts from the previous result."""
    lines = []
    for _ in range(rng.randint(1, 3)):
        x = rng.randint(2, 60) if rng.random() < 0.5 else rng.randint(2, 9)
        if rng.random() < 0.4:
            y = rng.randint(2, 9)
            lines.append(mul_eq(rng, x, y))
            x *= y
        for _ in range(rng.randint(1, 3)):
            op = rng.choice("+-*") if x < 100 else rng.choice("+-")
            if op == "+":
                y = rng.randint(1, 99)
                lines.append("%d + %d = %d" % (x, y, x + y))
                x += y
            elif op == "-":
                y = rng.randint(0, x)
                lines.append(sub_eq(x, y))
                x -= y
            else:
                y = rng.randint(2, 5)
                lines.append("%d * %d = %d" % (x, y, x * y))
                x *= y
    return "\n".join(lines)


def s0_question(rng):
    """Arithmetic asked in words, bare answer."""
    op = rng.choice("+-*")
    a, b = rand_operands(rng, op)
    word = {"+": rng.choice(["plus", "added to"]), "-": "minus",
            "*": rng.choice(["times", "multiplied by"])}[op]
    r = A._OPS[op](a, b)
    k = rng.randrange(5)
    if k == 0:
        q = "What is %d %s %d?" % (a, word, b)
    elif k == 1:
        q = "What is %d %s %d?" % (a, op, b)
    elif k == 2:
        q = "Compute %d %s %d." % (a, op, b)
    elif k == 3 and op == "+":
        q = "What is the sum of %d and %d?" % (a, b)
    elif k == 3 and op == "-":
        q = "What is the difference between %d and %d?" % (a, b)
    elif k == 3:
        q = "What is the product of %d and %d?" % (a, b)
    else:
        c = rng.randint(1, 30)
        if rng.random() < 0.5 or c > r:
            q, r = "What is %d %s %d + %d?" % (a, op, b, c), r + c
        else:
            q, r = "What is %d %s %d - %d?" % (a, op, b, c), r - c
        return "Question: %s\nAnswer: %d" % (q, r)
    # one operation: half the answers restate it as the equation (the operands copied from the question)
    if rng.random() < 0.5:
        return "Question: %s\nAnswer: %d %s %d = %d" % (q, a, op, b, r)
    return "Question: %s\nAnswer: %d" % (q, r)


def s0_shop(rng):
    n = people(rng, 1)[0]
    item, lo, hi = rng.choice(A.ITEMS)
    p, k = rng.randint(lo, hi), rng.randint(2, 6)
    q = "One %s costs $%d. How much do %d of them cost?" % (item, p, k)
    return q, p * k


def s0_age(rng):
    n, m = people(rng, 2)
    a, d = rng.randint(5, 60), rng.randint(1, 30)
    if rng.random() < 0.5:
        q = "%s is %d years old. %s is %d years older. How old is %s?" % (n, a, m, d, m)
        return q, a + d
    a += d
    q = "%s is %d years old. %s is %d years younger. How old is %s?" % (n, a, m, d, m)
    return q, a - d


def s0_share(rng):
    n = people(rng, 1)[0]
    o = rng.choice(OBJECTS)
    k, e = rng.randint(2, 9), rng.randint(2, 12)
    q = "%s gives %d friends %s each. How many %s does %s give away?" % (
        n, k, cnt(e, o), o[1], n.subj)
    return q, k * e


def s0_word(rng):
    r = rng.random()
    if r < 0.85:
        level = 1 if r < 0.35 else (2 if r < 0.65 else 3)
        q, ans, _ = rng.choice(A.TEMPLATES[level])(rng)
    else:
        q, ans = rng.choice((s0_shop, s0_age, s0_share))(rng)
    return "Question: %s\nAnswer: %d" % (q, ans)


S0_KINDS = {"word": s0_word, "question": s0_question,
            "equations": s0_equations, "chain": s0_chain}


def stage0_items(rng, n):
    kinds = []
    for name, share in MIX0:
        kinds += [name] * round(n * share)
    kinds = (kinds + [MIX0[0][0]] * n)[:n]
    rng.shuffle(kinds)
    items = []
    for k in kinds:
        t = S0_KINDS[k](rng)
        assert "####" not in t and "\n\n" not in t
        for x, op, y, z in A._EQ.findall(t):
            assert A._OPS[op](int(x), int(y)) == int(z), t
        items.append((t, k))
    return items


def stage0_rows(items):
    """Pack consecutive items into documents of at least DOC_CHARS characters
    (items separated by a blank line): rows of similar length pad little."""
    rows, doc, kinds = [], [], []
    for t, k in items:
        doc.append(t)
        kinds.append(k)
        if sum(len(x) + 2 for x in doc) >= DOC_CHARS:
            rows.append(({"text": "\n\n".join(doc)}, kinds))
            doc, kinds = [], []
    return rows


def without_bos(rows):
    """The same documents as prompt/completion rows, split at their first
    newline: iqtrain encodes a {"text"} row after an EOS-as-BOS but a prompt
    without one, so these train the model on the start stage 1 shows it."""
    out = []
    for r, kinds in rows:
        t = r["text"]
        i = t.index("\n")
        out.append(({"prompt": t[:i], "completion": t[i:]}, kinds))
    return out


# --------------------------------------------------------------------------
# Stage 1: held-out families, worked solutions. Each returns
# (question, answer, [solution lines, ...]) like gen_arith's templates.

VEHICLES = [("bus", "passengers", "stop"), ("train", "passengers", "station"),
            ("ferry", "passengers", "dock"), ("tram", "riders", "stop")]
CROPS = [("tomato", "plants"), ("apple", "trees"), ("carrot", "plants"),
         ("pepper", "plants"), ("lettuce", "heads"), ("orange", "trees")]
GROUPS = [("class", "students"), ("club", "members"), ("choir", "singers"),
          ("team", "players"), ("band", "musicians")]
VENUES = [("hall", "chairs", "rows"), ("theater", "seats", "rows"),
          ("stadium", "seats", "sections"), ("cinema", "seats", "rows")]


def u_vehicle(rng):
    v, riders, stop = rng.choice(VEHICLES)
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    ans = a + b
    q = ("A %s has %d %s on board. At the next %s, %d more get on and nobody "
         "gets off. How many %s are on the %s now?") % (v, a, riders, stop, b, riders, v)
    sols = [[add_eq(rng, a, b)],
            ["%d people were on the %s and %d got on." % (a, v, b), add_eq(rng, a, b)],
            ["There are %s %s now." % (add_eq(rng, a, b), riders)]]
    return q, ans, sols


def u_rows(rng):
    n = people(rng, 1)[0]
    crop, unit = rng.choice(CROPS)
    r, k = rng.randint(2, 5), rng.randint(2, 9)
    ans = r * k
    q = ("In %s's garden there are %d rows of %s %s, with %d in each row. "
         "How many %s %s are in the garden?") % (n, r, crop, unit, k, crop, unit)
    sols = [[mul_eq(rng, r, k)],
            ["Each row has %d, and there are %d rows." % (k, r), mul_eq(rng, r, k)],
            ["The garden has %s %s %s." % (mul_eq(rng, r, k), crop, unit)]]
    return q, ans, sols


def u_broken(rng):
    n = people(rng, 1)[0]
    o = rng.choice([("plate", "plates"), ("glass", "glasses"), ("cup", "cups"),
                    ("vase", "vases"), ("bowl", "bowls")])
    b = rng.randint(1, 9)
    a = rng.randint(b + 1, min(18, b + 9))
    ans = a - b
    q = ("%s carries a tray of %s. %s trips, and %d of them break. "
         "How many %s are still whole?") % (n, cnt(a, o), n.Subj, b, o[1])
    sols = [[sub_eq(a, b)],
            ["%d %s minus the %d that broke." % (a, o[1], b), sub_eq(a, b)],
            ["%s still has %s whole %s." % (n, sub_eq(a, b), o[1])]]
    return q, ans, sols


def u_group(rng):
    g, members = rng.choice(GROUPS)
    a = rng.randint(10, 60)
    j = rng.randint(2, 30)
    l = rng.randint(2, a + j - 1)
    ans = a + j - l
    q = ("A %s has %d %s. In the spring %d new %s join, and in the summer "
         "%d %s leave. How many %s does the %s have at the end of the summer?") % (
        g, a, members, j, members, l, members, members, g)
    sols = [[add_eq(rng, a, j), sub_eq(a + j, l)],
            ["After the spring: %s." % add_eq(rng, a, j),
             "After the summer: %s." % sub_eq(a + j, l)],
            ["First, %s." % add_eq(rng, a, j), "Then, %s." % sub_eq(a + j, l)]]
    return q, ans, sols


def u_recipe(rng):
    n = people(rng, 1)[0]
    what, per, ing = rng.choice([("cakes", "eggs", "eggs"), ("pies", "apples", "apples"),
                                 ("pizzas", "tomatoes", "tomatoes"),
                                 ("salads", "carrots", "carrots")])
    k, e = rng.randint(2, 6), rng.randint(2, 9)
    used = k * e
    have = rng.randint(used + 1, used + 40)
    ans = have - used
    q = ("Each of %s's %s needs %d %s. %s has %d %s and makes %d %s. "
         "How many %s are left over?") % (n, what, e, per, n.Subj, have, ing, k, what, ing)
    sols = [[mul_eq(rng, k, e), sub_eq(have, used)],
            ["The %s use %s %s." % (what, mul_eq(rng, k, e), ing),
             "%s has %s left." % (n.Subj, sub_eq(have, used))],
            ["First, %s." % mul_eq(rng, e, k), "Then, %s." % sub_eq(have, used)]]
    return q, ans, sols


def u_trip(rng):
    n = people(rng, 1)[0]
    d1, d2 = rng.randint(10, 60), rng.randint(10, 60)
    back = rng.randint(2, d1 + d2 - 1)
    ans = d1 + d2 - back
    unit = rng.choice(["miles", "kilometers"])
    q = ("%s drives %d %s on the first day of a trip and %d %s on the second "
         "day. Then %s drives %d %s back toward home. How far from home is %s?") % (
        n, d1, unit, d2, unit, n.subj, back, unit, n.subj)
    sols = [[add_eq(rng, d1, d2), sub_eq(d1 + d2, back)],
            ["In two days %s drives %s %s." % (n.subj, add_eq(rng, d1, d2), unit),
             "Driving back leaves %s." % sub_eq(d1 + d2, back)],
            ["First, %s." % add_eq(rng, d1, d2), "Then, %s." % sub_eq(d1 + d2, back)]]
    return q, ans, sols


def u_venue(rng):
    place, seats, rows = rng.choice(VENUES)
    while True:
        r, k = rng.randint(3, 9), rng.randint(12, 30)
        t = r * k
        a = rng.randint(11, t // 2)
        b = rng.randint(11, t - a - 1)
        if carries(a, b) or borrows(t, a + b):
            break
    ans = t - a - b
    q = ("A %s has %d %s with %d %s in each. %d people sit down before the "
         "show and %d more come in late. How many %s are empty?") % (
        place, r, rows, k, seats, a, b, seats)
    sols = [[mul_eq(rng, r, k), add_eq(rng, a, b), sub_eq(t, a + b)],
            ["The %s has %s %s." % (place, mul_eq(rng, r, k), seats),
             "%s people come." % add_eq(rng, a, b),
             "%s %s are empty." % (sub_eq(t, a + b), seats)],
            ["First, %s." % mul_eq(rng, k, r), "Then, %s." % sub_eq(t, a),
             "Last, %s." % sub_eq(t - a, b)]]
    return q, ans, sols


def u_orchard(rng):
    n = people(rng, 1)[0]
    crop, unit = rng.choice(CROPS)
    while True:
        r, k = rng.randint(3, 9), rng.randint(11, 25)
        t = r * k
        p = rng.randint(11, 80)
        c = rng.randint(11, t + p - 10)
        if carries(t, p) or borrows(t + p, c):
            break
    ans = t + p - c
    q = ("%s's farm has %d rows of %s %s with %d in each row. %s adds %d more "
         "%s %s, and then %d are sold. How many %s %s are left on the farm?") % (
        n, r, crop, unit, k, n.Subj, p, crop, unit, c, crop, unit)
    sols = [[mul_eq(rng, r, k), add_eq(rng, t, p), sub_eq(t + p, c)],
            ["The rows hold %s." % mul_eq(rng, r, k),
             "With the new ones: %s." % add_eq(rng, t, p),
             "After the sale: %s." % sub_eq(t + p, c)],
            ["First, %s." % mul_eq(rng, k, r), "Then, %s." % add_eq(rng, p, t),
             "Finally, %s." % sub_eq(t + p, c)]]
    return q, ans, sols


TEMPLATES1 = {1: [u_vehicle, u_rows, u_broken], 2: [u_group, u_recipe, u_trip],
              3: [u_venue, u_orchard]}


def make_problem1(rng, level):
    tmpl = rng.choice(TEMPLATES1[level])
    q, ans, sols = tmpl(rng)
    assert isinstance(ans, int) and ans >= 0, (tmpl.__name__, q, ans)
    assert "\n" not in q and "  " not in q, q
    comps = []
    for s in sols:
        c = " " + "\n".join(s) + "\n#### %d" % ans
        A.check_completion(c, ans)
        comps.append(c)
    return {"level": level, "template": tmpl.__name__,
            "prompt": "Question: %s\nAnswer:" % q, "answer": ans,
            "completion": rng.choice(comps)}


def level_plan(rng, n, shares):
    counts = [round(n * f) for f in shares]
    counts[0] += n - sum(counts)
    plan = [lv for lv, c in zip((1, 2, 3), counts) for _ in range(c)]
    rng.shuffle(plan)
    return plan


def stage1_problems(rng):
    seen, out = set(), {}
    for split, n in (("eval", N_EVAL1), ("pool", N_POOL)):
        probs = []
        for level in level_plan(rng, n, LEVEL_SHARE1):
            while True:
                p = make_problem1(rng, level)
                if p["prompt"] not in seen:
                    break
            seen.add(p["prompt"])
            probs.append(p)
        out[split] = probs
    return out["eval"], out["pool"]


# --------------------------------------------------------------------------
# Output

def write_gz(path, rows):
    data = "".join(A.dumps(r) + "\n" for r in rows).encode("utf-8")
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0,
                           compresslevel=9) as g:
            g.write(data)
    with open(path, "rb") as f:
        return {"bytes": os.path.getsize(path), "sha256": hashlib.sha256(f.read()).hexdigest()}


README = """# data/paper — data of the paper-regime experiment (issue #16)

Made by `scripts/gen_paper_data.py` (standard library only; stage 0 seed
{seed0}, stage 1 seed {seed1}; reuses the 20 templates of
`scripts/gen_arith.py`). Regenerate from the repository root with

    /usr/bin/python3 scripts/gen_paper_data.py

which rewrites byte-identical files (gzip header without file name, mtime 0).
The sha256 below identify them.

## Stage 0: pretraining corpus (answers without worked solutions)

`{{"text"}}` rows, every token supervised. Each row is a document of
consecutive items separated by a blank line, packed until it holds at least
{doc} characters (rows of similar length waste little padding). Mix of items:
{mix0}.

- word: word problems of 23 families, `Question: <problem>\\nAnswer: <N>`
  (the 20 templates of data/arith — levels 1/2/3 drawn 35/30/20 % of these
  items — plus 3 more: unit prices, ages, sharing; 15 %), the bare answer only;
- question: arithmetic asked in words or symbols, `Question: What is 17 plus
  25?\\nAnswer: 42` (also "Compute a op b.", sums, differences, products and
  `a op b ± c`); half the one-operation answers restate the operation as an
  equation (`Answer: 17 + 25 = 42`: the operands copied from the question);
- equations: 3-8 lines of bare equations `a + b = c`, `a - b = c`,
  `a * b = c` (1-3 digit operands, products up to 9 * 300);
- chain: 1-3 short chains of 1-4 equations each, every line starting from
  the previous result (`3 * 12 = 36` / `36 - 17 = 19` / `19 + 25 = 44`).

No row holds `####` or a worked solution in words; every equation is checked.

`stage0b.jsonl.gz` and `stage0b_eval.jsonl.gz` hold the same documents as
`{{"prompt","completion"}}` rows split after their first line (the first line
is context, the rest supervised). iqtrain encodes a `{{"text"}}` row after an
EOS used as BOS, but a prompt without one (DESIGN.md §3), and stage 1's rows
are prompts: a model pretrained only on text rows has always seen position 0
hold the BOS, and loses much of what it knows without it (the gate of
data/results/paper/PLAN.md). The second pretraining phase trains on these.

## Stage 1: worked solutions of 8 held-out families

`{{"prompt","completion"}}` rows like data/arith (`Question: ...\\nAnswer:` →
` <steps>\\n#### N`, one equation per step), from 8 template families not in
stage 0 (vehicles boarding, garden rows, broken dishes; group joins and
leaves, recipe leftovers, trips; seats in a venue, orchard rows; levels 1/2/3
= 35/35/30 % of problems), one worked solution per problem, drawn from the
family's 3 solution styles. The same arithmetic skills as stage 0 (one to
three steps of +, -, * with 1-3 digit numbers and carries). Prompts are unique
across the pool and eval. `stage1_train_N` holds the first N rows of the
pool, N = 128, 256, 512, 1,024, 2,048 (nested: each a prefix of the larger).

## Contents

| file | rows | mix / levels 1 / 2 / 3 | bytes | sha256 |
|---|---|---|---|---|
{table}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "paper"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng0 = random.Random(SEED0)
    items = stage0_items(rng0, N_STAGE0 + N_STAGE0_EVAL)
    s0_eval, s0_train = stage0_rows(items[:N_STAGE0_EVAL]), stage0_rows(items[N_STAGE0_EVAL:])

    rng1 = random.Random(SEED1)
    ev1, pool = stage1_problems(rng1)
    assert not ({p["prompt"] for p in ev1} & {p["prompt"] for p in pool})

    def mix(rows):
        kinds = [k for _, ks in rows for k in ks]
        return "%d items: " % len(kinds) + " / ".join("%s %d" % (k, kinds.count(k)) for k, _ in MIX0)

    def levels(probs):
        return " / ".join(str(sum(p["level"] == lv for p in probs)) for lv in (1, 2, 3))

    def pc(probs):
        return [{"prompt": p["prompt"], "completion": p["completion"]} for p in probs]

    files = [("stage0.jsonl.gz", [r for r, _ in s0_train], mix(s0_train)),
             ("stage0_eval.jsonl.gz", [r for r, _ in s0_eval], mix(s0_eval)),
             ("stage0b.jsonl.gz", [r for r, _ in without_bos(s0_train)], mix(s0_train)),
             ("stage0b_eval.jsonl.gz", [r for r, _ in without_bos(s0_eval)], mix(s0_eval)),
             ("stage1_pool.jsonl.gz", pc(pool), levels(pool))]
    for n in SUBSETS:
        files.append(("stage1_train_%d.jsonl.gz" % n, pc(pool[:n]), levels(pool[:n])))
    files.append(("stage1_eval.jsonl.gz", pc(ev1), levels(ev1)))

    table = []
    for name, rows, desc in files:
        info = write_gz(os.path.join(args.out, name), rows)
        table.append("| %s | %d | %s | %d | `%s` |" % (name, len(rows), desc,
                                                     info["bytes"], info["sha256"]))
        print("%-26s %7d rows  %9d bytes  %s" % (name, len(rows), info["bytes"], info["sha256"]))
    mix0 = ", ".join("%s %d %%" % (k, round(100 * s)) for k, s in MIX0)
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(README.format(seed0=SEED0, seed1=SEED1, mix0=mix0, doc=DOC_CHARS,
                             table="\n".join(table)))


if __name__ == "__main__":
    main()
