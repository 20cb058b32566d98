#!/usr/bin/python3
"""Generate iqtrain's bundled demonstration data: synthetic GSM8k-style math
word problems with short step-by-step worked solutions.

Run from anywhere:  /usr/bin/python3 scripts/gen_arith.py
Standard library only. Fully deterministic (fixed seed, gzip header without
file name or timestamp): running it again rewrites byte-identical files.

Outputs (paths relative to the repository root):
  data/arith/train.jsonl.gz   8,000 problems, each with 2-4 different worked
                              solutions as separate rows (same prompt,
                              different completion), rows shuffled
  data/arith/eval.jsonl.gz    exactly 500 problems, one reference solution each
  data/arith/README.md        format, mix, counts, seed, sha256 of the .gz files
  data/samples/text.jsonl, messages.jsonl, prompt_completion.jsonl
                              small hand-written samples for tests and docs

Row format: one JSON object per line (UTF-8, LF), keys in this order:
  {"prompt": "Question: <problem text>\\nAnswer:",
   "completion": " <step 1>\\n<step 2>\\n...\\n#### <N>"}
The completion starts with a space, has one reasoning step per line and ends
with the GSM8k final-answer line "#### N" (N a non-negative integer, no
trailing newline). The answer is the number after the last "####".
Arithmetic in the steps is written "a + b = c", "a - b = c", "a * b = c".

Difficulty levels (share of problems in each split):
  1 (40%) one step, small numbers: single-digit addition, subtraction with
          results under 20, single-digit times 2-5
  2 (35%) two steps, numbers mostly under 100 (+, -, small *)
  3 (25%) three steps with 2- and 3-digit numbers and at least one carry or
          borrow (e.g. "buys 3 packs of 12, gives away 17, buys 25 more")
20 problem templates (7 / 7 / 6 per level) with varied names, objects, verbs.

No problem is shared between splits: a problem is identified by its exact
prompt text; eval is generated first and its prompts are excluded from train
(as are duplicate prompts within train).
"""

import gzip
import hashlib
import json
import os
import random
import re

SEED = 20241125
N_EVAL = 500
N_TRAIN_PROBLEMS = 8000
LEVEL_SHARE = (0.40, 0.35, 0.25)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARITH_DIR = os.path.join(ROOT, "data", "arith")
SAMPLES_DIR = os.path.join(ROOT, "data", "samples")

# --------------------------------------------------------------------------
# Vocabulary

_NAMES = """
Tom:m Mia:f Liam:m Emma:f Noah:m Olivia:f Ava:f Lucas:m Sofia:f Ethan:m
Zoe:f Omar:m Priya:f Mateo:m Hana:f Kofi:m Lena:f Diego:m Aisha:f Ben:m
Chloe:f Ravi:m Nora:f Sam:m Grace:f Leo:m Maya:f Jack:m Ivy:f Hugo:m
Elena:f Max:m Yuki:f Oscar:m Amara:f Finn:m Lucy:f Jamal:m Rosa:f Eli:m
Tara:f Felix:m Nina:f Marco:m Julia:f Kenji:m Leila:f Owen:m Sara:f Ali:m
"""
PRONOUNS = {"m": ("he", "him", "his"), "f": ("she", "her", "her")}


class Person:
    def __init__(self, name, g):
        self.name = name
        self.subj, self.obj, self.pos = PRONOUNS[g]
        self.Subj = self.subj.capitalize()

    def __str__(self):
        return self.name


PEOPLE = [Person(*tok.split(":")) for tok in _NAMES.split()]

# (singular, plural) countable things a person can own
OBJECTS = [
    ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"),
    ("pencil", "pencils"), ("cookie", "cookies"), ("book", "books"),
    ("shell", "shells"), ("stamp", "stamps"), ("card", "cards"),
    ("balloon", "balloons"), ("crayon", "crayons"), ("toy car", "toy cars"),
    ("bead", "beads"), ("orange", "oranges"), ("cupcake", "cupcakes"),
    ("coin", "coins"), ("flower", "flowers"), ("rock", "rocks"),
    ("button", "buttons"), ("pen", "pens"), ("lemon", "lemons"),
    ("candy", "candies"), ("comic", "comics"), ("puzzle", "puzzles"),
]
# (singular, plural) containers
CONTAINERS = [
    ("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("basket", "baskets"),
    ("tin", "tins"), ("bowl", "bowls"), ("crate", "crates"), ("cup", "cups"),
]
# (plural animal, where, arrival phrase)
ANIMALS = [
    ("birds", "on the fence", "land on the fence"),
    ("ducks", "in the pond", "swim into the pond"),
    ("frogs", "on the log", "hop onto the log"),
    ("sheep", "in the field", "walk into the field"),
    ("fish", "in the tank", "are put into the tank"),
    ("cats", "in the yard", "come into the yard"),
    ("bees", "on the flower bed", "fly to the flower bed"),
    ("rabbits", "in the garden", "hop into the garden"),
]
# (item, low price, high price) for money problems
ITEMS = [
    ("book", 4, 15), ("toy", 3, 12), ("hat", 5, 14), ("lunch", 4, 11),
    ("ball", 2, 9), ("kite", 4, 13), ("notebook", 2, 7), ("game", 8, 19),
    ("shirt", 7, 18), ("scarf", 5, 13), ("puzzle", 4, 12), ("plant", 3, 10),
]
BIG_ITEMS = ["bike", "jacket", "watch", "backpack", "guitar", "pair of shoes",
             "lamp", "chair", "board game", "camera"]
# (maker noun, verb, goods, tray word)
BAKES = [
    ("baker", "bakes", "muffins", "trays"), ("chef", "makes", "rolls", "trays"),
    ("cook", "makes", "dumplings", "plates"),
    ("baker", "bakes", "cookies", "sheets"),
    ("farmer", "packs", "eggs", "cartons"),
    ("gardener", "grows", "seedlings", "flats"),
]
# (place, things kept there)
STORES = [
    ("library", ("book", "books")), ("shop", ("toy", "toys")),
    ("bakery", ("bun", "buns")), ("farm stand", ("melon", "melons")),
    ("bookstore", ("comic", "comics")), ("warehouse", ("chair", "chairs")),
    ("garden center", ("plant", "plants")), ("market", ("pumpkin", "pumpkins")),
]
# (verb 3rd person, past, unit plural)
ACTIVITIES = [
    ("read", "reads", "pages"), ("swim", "swims", "laps"),
    ("write", "writes", "lines"), ("knit", "knits", "rows"),
    ("run", "runs", "laps"), ("fold", "folds", "paper cranes"),
    ("paint", "paints", "tiles"), ("solve", "solves", "puzzles"),
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
COLLECT = [("picked", "pick"), ("collected", "collect"), ("found", "find"),
           ("gathered", "gather")]


def people(rng, k):
    return rng.sample(PEOPLE, k)


def cnt(n, thing):
    """'1 apple' / '3 apples' for a (singular, plural) pair."""
    return "%d %s" % (n, thing[0] if n == 1 else thing[1])


def add_eq(rng, a, b):
    x, y = (a, b) if rng.random() < 0.5 else (b, a)
    return "%d + %d = %d" % (x, y, a + b)


def mul_eq(rng, a, b):
    x, y = (a, b) if rng.random() < 0.5 else (b, a)
    return "%d * %d = %d" % (x, y, a * b)


def sub_eq(a, b):
    assert a >= b >= 0
    return "%d - %d = %d" % (a, b, a - b)


def carries(x, y):
    """True if x + y needs a carry in some column."""
    c = 0
    while x or y:
        c = 1 if x % 10 + y % 10 + c >= 10 else 0
        if c:
            return True
        x //= 10
        y //= 10
    return False


def borrows(x, y):
    """True if x - y (x >= y) needs a borrow in some column."""
    while y:
        if x % 10 < y % 10:
            return True
        x //= 10
        y //= 10
    return False


# --------------------------------------------------------------------------
# Templates. Each returns (question, answer, [solution, ...]) where a solution
# is a list of lines; the "#### N" line is added later.

# ---- level 1: one step, small numbers ------------------------------------

def t_gift(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    ans = a + b
    verb = rng.choice(["gives", "hands", "sends"])
    q = "%s has %s. %s %s %s %d more. How many %s does %s have now?" % (
        n, cnt(a, o), m, verb, n.obj, b, o[1], n)
    sols = [
        ["%s starts with %d and gets %d more." % (n, a, b),
         add_eq(rng, a, b) + "."],
        [add_eq(rng, a, b) + ".", "%s has %s now." % (n, cnt(ans, o))],
        ["%s had %d. %s gave %s %d more." % (n, a, m, n.obj, b),
         "So %s has %s %s." % (n, add_eq(rng, a, b), o[1])],
        ["Add the %s from %s: %s." % (o[1], m, add_eq(rng, a, b))],
    ]
    return q, ans, sols


def t_give_away(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    b = rng.randint(1, 9)
    a = rng.randint(b + 1, min(18, b + 9))
    ans = a - b
    verb = rng.choice(["gives", "lends", "passes"])
    q = "%s has %s. %s %s %d of them to %s. How many %s does %s have left?" % (
        n, cnt(a, o), n.Subj, verb, b, m, o[1], n)
    sols = [
        ["%s starts with %d and %s %d to %s." % (n, a, verb, b, m),
         sub_eq(a, b) + "."],
        [sub_eq(a, b) + ".", "%s has %s left." % (n, cnt(ans, o))],
        ["%s had %s and %d went to %s." % (n, cnt(a, o), b, m),
         "So %s has %s %s left." % (n.subj, sub_eq(a, b), o[ans != 1])],
        ["Take away the %d %s gave to %s: %s." % (b, n.subj, m, sub_eq(a, b))],
    ]
    return q, ans, sols


def t_together(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    ans = a + b
    tail = rng.choice(["altogether", "in total", "together"])
    q = "%s has %s and %s has %s. How many %s do they have %s?" % (
        n, cnt(a, o), m, cnt(b, o), o[1], tail)
    sols = [
        ["Add what they each have: %s." % add_eq(rng, a, b)],
        ["%s has %d and %s has %d." % (n, a, m, b), add_eq(rng, a, b) + "."],
        [add_eq(rng, a, b) + ".", "They have %s %s." % (cnt(ans, o), tail)],
        ["Together they have %s %s." % (add_eq(rng, a, b), o[1])],
    ]
    return q, ans, sols


def t_take_out(rng):
    n = people(rng, 1)[0]
    o = rng.choice(OBJECTS)
    c = rng.choice(CONTAINERS)
    b = rng.randint(1, 9)
    a = rng.randint(b + 1, min(18, b + 9))
    ans = a - b
    edible = o[0] in ("apple", "cookie", "orange", "cupcake", "candy", "lemon")
    verb = rng.choice(["takes %d of them out" % b, "pulls out %d" % b] +
                      (["eats %d of them" % b] if edible else []))
    q = "There are %s in a %s. %s %s. How many %s are still in the %s?" % (
        cnt(a, o), c[0], n, verb, o[1], c[0])
    sols = [
        ["The %s had %d and %d %s taken." % (c[0], a, b, "was" if b == 1 else "were"),
         sub_eq(a, b) + "."],
        [sub_eq(a, b) + ".", "There %s %s still in the %s." % (
            "is" if ans == 1 else "are", cnt(ans, o), c[0])],
        ["Start with %d and take away %d: %s." % (a, b, sub_eq(a, b))],
        ["%s removes %d of the %d %s." % (n, b, a, o[1]),
         "%s left in the %s." % (sub_eq(a, b), c[0])],
    ]
    return q, ans, sols


def t_groups(rng):
    n = people(rng, 1)[0]
    o = rng.choice(OBJECTS)
    c = rng.choice(CONTAINERS)
    a, b = rng.randint(2, 5), rng.randint(2, 9)
    ans = a * b
    q = "%s has %d %s with %s in each %s. How many %s does %s have in all?" % (
        n, a, c[1], cnt(b, o), c[0], o[1], n)
    sols = [
        ["There are %d %s with %d in each." % (a, c[1], b),
         mul_eq(rng, a, b) + "."],
        [mul_eq(rng, a, b) + ".", "%s has %s in all." % (n, cnt(ans, o))],
        ["Each %s holds %d, and there are %d %s." % (c[0], b, a, c[1]),
         "So %s has %s %s." % (n, mul_eq(rng, a, b), o[1])],
        ["Multiply the number of %s by the number in each: %s." % (
            c[1], mul_eq(rng, a, b))],
    ]
    return q, ans, sols


def t_compare(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    b = rng.randint(1, 9)
    a = rng.randint(b + 1, min(18, b + 9))
    ans = a - b
    q = "%s has %s. %s has %s. How many more %s does %s have than %s?" % (
        n, cnt(a, o), m, cnt(b, o), o[1], n, m)
    sols = [
        ["Find the difference: %s." % sub_eq(a, b)],
        ["%s has %d and %s has %d." % (n, a, m, b), sub_eq(a, b) + "."],
        [sub_eq(a, b) + ".", "%s has %d more than %s." % (n, ans, m)],
        ["Subtract %s's %s from %s's: %s." % (m, o[1], n, sub_eq(a, b))],
    ]
    return q, ans, sols


def t_animals(rng):
    kind, where, arrive = rng.choice(ANIMALS)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    ans = a + b
    q = "There are %d %s %s. Then %d more %s %s. How many %s are %s now?" % (
        a, kind, where, b, kind, arrive, kind, where)
    sols = [
        ["%d %s were there and %d more came." % (a, kind, b),
         add_eq(rng, a, b) + "."],
        [add_eq(rng, a, b) + ".", "There are %d %s %s now." % (ans, kind, where)],
        ["Add the new %s to the first ones: %s." % (kind, add_eq(rng, a, b))],
        ["Now there are %s %s." % (add_eq(rng, a, b), kind)],
    ]
    return q, ans, sols


# ---- level 2: two steps ---------------------------------------------------

def t_buy_give(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    a, b = rng.randint(5, 40), rng.randint(2, 30)
    c = rng.randint(2, a + b - 1)
    s = a + b
    ans = s - c
    gain, gained = rng.choice([("buys", "bought"), ("finds", "found"),
                               ("wins", "won"), ("gets", "got")])
    lose, lost = rng.choice([("gives %d to %s" % (c, m), "gave %d to %s" % (c, m)),
                             ("loses %d" % c, "lost %d" % c),
                             ("trades %d to %s" % (c, m), "traded %d to %s" % (c, m))])
    q = "%s has %s. %s %s %d more and then %s. How many %s does %s have now?" % (
        n, cnt(a, o), n.Subj, gain, b, lose, o[1], n)
    sols = [
        ["First, %s %s %d: %s." % (n.subj, gained, b, add_eq(rng, a, b)),
         "Then %s %s: %s." % (n.subj, lost, sub_eq(s, c))],
        ["%s has %s %s after that." % (n, add_eq(rng, a, b), o[1]),
         "%s %s, so %s." % (n.Subj, lost, sub_eq(s, c))],
        [add_eq(rng, a, b), sub_eq(s, c)],
    ]
    if c <= a:
        d = a - c
        sols.append(["Take away the %d first: %s." % (c, sub_eq(a, c)),
                     "Then add the %d %s %s: %s." % (b, n.subj, gained,
                                                    add_eq(rng, d, b))])
    return q, ans, sols


def t_packs_plus(rng):
    n = people(rng, 1)[0]
    o = rng.choice(OBJECTS)
    p, k, a = rng.randint(2, 6), rng.randint(2, 12), rng.randint(2, 30)
    t = p * k
    ans = t + a
    pack = rng.choice(["packs", "boxes", "bags", "sets"])
    q = ("%s buys %d %s of %s. Each one has %d %s. %s already had %s. "
         "How many %s does %s have now?") % (
        n, p, pack, o[1], k, o[1], n.Subj, cnt(a, o), o[1], n)
    sols = [
        ["The %s hold %s %s." % (pack, mul_eq(rng, p, k), o[1]),
         "Adding the %d %s had: %s." % (a, n.subj, add_eq(rng, t, a))],
        ["First, %s." % mul_eq(rng, p, k), "Then, %s." % add_eq(rng, t, a)],
        [mul_eq(rng, p, k), add_eq(rng, a, t)],
        ["%d %s of %d is %s." % (p, pack, k, mul_eq(rng, p, k)),
         "%s now has %s %s." % (n, add_eq(rng, a, t), o[1])],
    ]
    return q, ans, sols


def t_three_sum(rng):
    n, m, w = people(rng, 3)
    o = rng.choice(OBJECTS)
    a, b, c = rng.randint(3, 40), rng.randint(3, 40), rng.randint(3, 40)
    ans = a + b + c
    past, pres = rng.choice(COLLECT)
    q = "%s %s %s, %s %s %d, and %s %s %d. How many %s did they %s in total?" % (
        n, past, cnt(a, o), m, past, b, w, past, c, o[1], pres)
    ab, ac, bc = a + b, a + c, b + c
    sols = [
        ["First, %s." % add_eq(rng, a, b), "Then, %s." % add_eq(rng, ab, c)],
        ["%s and %s %s %s." % (n, w, past, add_eq(rng, a, c)),
         "Adding %s's %d: %s." % (m, b, add_eq(rng, ac, b))],
        [add_eq(rng, b, c), add_eq(rng, bc, a)],
        ["%s and %s %s %s %s." % (n, m, past, add_eq(rng, a, b), o[1]),
         "With %s's %d, they have %s." % (w, c, add_eq(rng, ab, c))],
    ]
    return q, ans, sols


def t_money_two(rng):
    n = people(rng, 1)[0]
    (i1, l1, h1), (i2, l2, h2) = rng.sample(ITEMS, 2)
    b, c = rng.randint(l1, h1), rng.randint(l2, h2)
    a = rng.randint(b + c, 60)
    ans = a - b - c
    q = ("%s has $%d. %s spends $%d on a %s and $%d on a %s. "
         "How much money does %s have left?") % (n, a, n.Subj, b, i1, c, i2, n)
    sols = [
        ["After the %s, %s has %s." % (i1, n.subj, sub_eq(a, b)),
         "After the %s, %s has %s." % (i2, n.subj, sub_eq(a - b, c))],
        ["%s spends %s in all." % (n, add_eq(rng, b, c)),
         "%s has %s left." % (n.Subj, sub_eq(a, b + c))],
        [sub_eq(a, c), sub_eq(a - c, b)],
        ["First, %s." % sub_eq(a, b), "Then, %s." % sub_eq(a - b, c)],
    ]
    return q, ans, sols


def t_times_as_many(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    a, k = rng.randint(2, 15), rng.randint(2, 5)
    word = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}[k]
    ma = k * a
    ans = a + ma
    tail = rng.choice(["together", "altogether", "in total"])
    q = "%s has %s. %s has %s as many %s as %s. How many %s do they have %s?" % (
        n, cnt(a, o), m, word, o[1], n, o[1], tail)
    sols = [
        ["%s has %s %s." % (m, mul_eq(rng, k, a), o[1]),
         "Together they have %s." % add_eq(rng, a, ma)],
        ["First, %s." % mul_eq(rng, a, k), "Then, %s." % add_eq(rng, ma, a)],
        [mul_eq(rng, k, a), add_eq(rng, a, ma)],
        ["Together they have %d + 1 = %d groups of %d." % (k, k + 1, a),
         mul_eq(rng, k + 1, a) + "."],
    ]
    return q, ans, sols


def t_fewer_together(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    a = rng.randint(8, 50)
    b = rng.randint(2, a - 2)
    ma = a - b
    ans = a + ma
    q = ("%s has %s. %s has %d fewer %s than %s. "
         "How many %s do they have together?") % (n, cnt(a, o), m, b, o[1], n, o[1])
    sols = [
        ["%s has %s %s." % (m, sub_eq(a, b), o[1]),
         "Together they have %s." % add_eq(rng, a, ma)],
        ["First, %s." % sub_eq(a, b), "Then, %s." % add_eq(rng, a, ma)],
        [sub_eq(a, b), add_eq(rng, ma, a)],
        ["If %s had as many as %s, they would have %s." % (m, n, add_eq(rng, a, a)),
         "%s has %d fewer, so %s." % (m, b, sub_eq(2 * a, b))],
    ]
    return q, ans, sols


def t_reading_left(rng):
    n = people(rng, 1)[0]
    base, verb, unit = rng.choice(ACTIVITIES)
    a, d = rng.randint(2, 12), rng.randint(2, 6)
    done = a * d
    t = rng.randint(done + 2, done + 40)
    ans = t - done
    q = ("%s wants to %s %d %s. %s %s %d %s a day for %d days. "
         "How many more %s does %s need to %s?") % (
        n, base, t, unit, n.Subj, verb, a, unit, d, unit, n.subj, base)
    sols = [
        ["In %d days %s %s %s %s." % (d, n.subj, verb, mul_eq(rng, a, d), unit),
         "%s needs %s more." % (n.Subj, sub_eq(t, done))],
        ["First, %s." % mul_eq(rng, d, a), "Then, %s." % sub_eq(t, done)],
        [mul_eq(rng, a, d), sub_eq(t, done)],
        ["%s has done %s %s so far." % (n, mul_eq(rng, a, d), unit),
         "%s %s are left." % (sub_eq(t, done), unit)],
    ]
    return q, ans, sols


# ---- level 3: three steps with carries ------------------------------------

def t_packs_give_buy(rng):
    n, m = people(rng, 2)
    o = rng.choice(OBJECTS)
    while True:
        p, k = rng.randint(2, 9), rng.randint(10, 25)
        t = p * k
        g = rng.randint(11, t - 5)
        b = rng.randint(11, 60)
        if borrows(t, g) or carries(t - g, b):
            break
    ans = t - g + b
    lose = rng.choice(["gives away %d of them" % g,
                       "gives %d of them to %s" % (g, m),
                       "uses %d of them" % g])
    q = ("%s buys %d packs of %d %s. %s %s and then buys %d more. "
         "How many %s does %s have now?") % (
        n, p, k, o[1], n.Subj, lose, b, o[1], n)
    sols = [
        ["First, %s %s." % (mul_eq(rng, p, k), o[1]),
         "Then, %s." % sub_eq(t, g), "Finally, %s." % add_eq(rng, t - g, b)],
        ["%d packs of %d is %s." % (p, k, mul_eq(rng, p, k)),
         "After giving some away: %s." % sub_eq(t, g) if "uses" not in lose else
         "After using some: %s." % sub_eq(t, g),
         "After buying more: %s." % add_eq(rng, t - g, b)],
        [mul_eq(rng, p, k), add_eq(rng, t, b), sub_eq(t + b, g)],
        [mul_eq(rng, k, p), sub_eq(t, g), add_eq(rng, t - g, b)],
    ]
    return q, ans, sols


def t_store_week(rng):
    place, o = rng.choice(STORES)
    while True:
        a = rng.randint(100, 600)
        b = rng.randint(12, a - 10)
        c = rng.randint(12, 250)
        d = rng.randint(12, a - b + c)
        if borrows(a, b) or carries(a - b, c) or borrows(a - b + c, d):
            break
    ans = a - b + c - d
    d1, d2, d3 = DAYS[:3] if rng.random() < 0.5 else DAYS[2:5]
    arrive = rng.choice(["%d more arrive" % c, "it gets %d more" % c,
                         "a delivery brings %d more" % c])
    q = ("A %s has %d %s. On %s it sells %d. On %s %s. On %s it sells %d. "
         "How many %s does the %s have now?") % (
        place, a, o[1], d1, b, d2, arrive, d3, d, o[1], place)
    sols = [
        ["After %s: %s." % (d1, sub_eq(a, b)),
         "After %s: %s." % (d2, add_eq(rng, a - b, c)),
         "After %s: %s." % (d3, sub_eq(a - b + c, d))],
        ["It sells %s %s in all." % (add_eq(rng, b, d), o[1]),
         "With the new ones it has %s." % add_eq(rng, a, c),
         "%s." % sub_eq(a + c, b + d)],
        [sub_eq(a, b), add_eq(rng, a - b, c), sub_eq(a - b + c, d)],
        ["First, %s." % add_eq(rng, a, c), "Then, %s." % sub_eq(a + c, b),
         "Last, %s." % sub_eq(a + c - b, d)],
    ]
    return q, ans, sols


def t_save_spend(rng):
    n, m = people(rng, 2)
    big = rng.choice(BIG_ITEMS)
    while True:
        a, w = rng.randint(5, 30), rng.randint(3, 9)
        t = a * w
        if t < 40:
            continue
        b = rng.randint(15, t - 1)
        c = rng.randint(11, 60)
        if borrows(t, b) or carries(t - b, c):
            break
    ans = t - b + c
    gift = rng.choice(["gets $%d from %s" % (c, m),
                       "earns $%d helping %s" % (c, m),
                       "is given $%d by %s" % (c, m)])
    q = ("%s saves $%d each week for %d weeks. Then %s spends $%d on a %s "
         "and %s. How much money does %s have now?") % (
        n, a, w, n.subj, b, big, gift, n)
    sols = [
        ["%s saves %s dollars." % (n, mul_eq(rng, a, w)),
         "After the %s: %s." % (big, sub_eq(t, b)),
         "With the money from %s: %s." % (m, add_eq(rng, t - b, c))],
        ["First, %s." % mul_eq(rng, w, a), "Then, %s." % sub_eq(t, b),
         "Finally, %s." % add_eq(rng, t - b, c)],
        [mul_eq(rng, a, w), add_eq(rng, t, c), sub_eq(t + c, b)],
        ["In %d weeks %s saves %s." % (w, n.subj, mul_eq(rng, a, w)),
         "Adding the $%d: %s." % (c, add_eq(rng, t, c)),
         "Paying for the %s: %s." % (big, sub_eq(t + c, b))],
    ]
    return q, ans, sols


def t_tickets(rng):
    n = people(rng, 1)[0]
    what = rng.choice(["the zoo", "the museum", "the fair", "a concert",
                       "the aquarium", "a play", "the water park"])
    while True:
        a, b = rng.randint(10, 35), rng.randint(5, 20)
        x, y = rng.randint(2, 6), rng.randint(2, 7)
        if a != b and carries(x * a, y * b):
            break
    ta, tb = x * a, y * b
    ans = ta + tb
    q = ("Adult tickets to %s cost $%d and child tickets cost $%d. %s buys "
         "%d adult tickets and %d child tickets. How much does %s pay in all?") % (
        what, a, b, n, x, y, n.subj)
    sols = [
        ["Adult tickets cost %s dollars." % mul_eq(rng, x, a),
         "Child tickets cost %s dollars." % mul_eq(rng, y, b),
         "In all, %s." % add_eq(rng, ta, tb)],
        ["Child tickets: %s." % mul_eq(rng, b, y),
         "Adult tickets: %s." % mul_eq(rng, a, x),
         "Total: %s." % add_eq(rng, ta, tb)],
        [mul_eq(rng, x, a), mul_eq(rng, y, b), add_eq(rng, ta, tb)],
        ["First, %s." % mul_eq(rng, a, x), "Then, %s." % mul_eq(rng, b, y),
         "%s pays %s dollars." % (n, add_eq(rng, ta, tb))],
    ]
    return q, ans, sols


def t_chain_people(rng):
    n, m, w = people(rng, 3)
    o = rng.choice(OBJECTS)
    while True:
        a, b = rng.randint(12, 90), rng.randint(11, 60)
        mm = a + b
        c = rng.randint(11, mm - 5)
        ww = mm - c
        if carries(a, b) or borrows(mm, c) or carries(mm, ww):
            break
    ans = mm + ww
    q = ("%s has %s. %s has %d more %s than %s. %s has %d fewer %s than %s. "
         "How many %s do %s and %s have together?") % (
        n, cnt(a, o), m, b, o[1], n, w, c, o[1], m, o[1], m, w)
    sols = [
        ["%s has %s %s." % (m, add_eq(rng, a, b), o[1]),
         "%s has %s %s." % (w, sub_eq(mm, c), o[1]),
         "Together they have %s." % add_eq(rng, mm, ww)],
        ["First, %s." % add_eq(rng, a, b), "Then, %s." % sub_eq(mm, c),
         "Finally, %s." % add_eq(rng, ww, mm)],
        [add_eq(rng, a, b), sub_eq(mm, c), add_eq(rng, mm, ww)],
        ["%s has %s." % (m, add_eq(rng, b, a)),
         "If %s had as many as %s, they would have %s." % (w, m, add_eq(rng, mm, mm)),
         "%s has %d fewer, so %s." % (w, c, sub_eq(2 * mm, c))],
    ]
    return q, ans, sols


def t_bakery(rng):
    n = people(rng, 1)[0]
    role, makes, goods, trays = rng.choice(BAKES)
    while True:
        p, k = rng.randint(3, 9), rng.randint(12, 30)
        t = p * k
        s = rng.randint(11, t - 20)
        u = rng.randint(11, t - s)
        if borrows(t, s) or borrows(t - s, u):
            break
    ans = t - s - u
    q = ("%s the %s %s %d %s of %d %s. %s sells %d in the morning and %d "
         "in the afternoon. How many %s are left?") % (
        n, role, makes, p, trays, k, goods, n.Subj, s, u, goods)
    sols = [
        ["%s %s %s %s." % (n, makes, mul_eq(rng, p, k), goods),
         "After the morning: %s." % sub_eq(t, s),
         "After the afternoon: %s." % sub_eq(t - s, u)],
        ["%s %s %s %s." % (n.Subj, makes, mul_eq(rng, k, p), goods),
         "%s sells %s in all." % (n.Subj, add_eq(rng, s, u)),
         "%s." % sub_eq(t, s + u)],
        [mul_eq(rng, p, k), sub_eq(t, s), sub_eq(t - s, u)],
        ["First, %s." % mul_eq(rng, p, k), "Then, %s." % sub_eq(t, u),
         "Last, %s." % sub_eq(t - u, s)],
    ]
    return q, ans, sols


TEMPLATES = {
    1: [t_gift, t_give_away, t_together, t_take_out, t_groups, t_compare,
        t_animals],
    2: [t_buy_give, t_packs_plus, t_three_sum, t_money_two, t_times_as_many,
        t_fewer_together, t_reading_left],
    3: [t_packs_give_buy, t_store_week, t_save_spend, t_tickets,
        t_chain_people, t_bakery],
}

# --------------------------------------------------------------------------
# Checking

_EQ = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)")
_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}


def check_completion(comp, ans):
    """Every 'x op y = z' in the text is correct; the last one gives ans."""
    assert comp.startswith(" ") and not comp.startswith("  "), comp
    lines = comp[1:].split("\n")
    assert lines[-1] == "#### %d" % ans, comp
    assert comp.count("####") == 1, comp
    eqs = _EQ.findall(comp)
    assert eqs, comp
    for x, op, y, z in eqs:
        assert _OPS[op](int(x), int(y)) == int(z), (comp, x, op, y, z)
        assert int(z) >= 0
    assert int(eqs[-1][3]) == ans, comp


def make_problem(rng, level):
    tmpl = rng.choice(TEMPLATES[level])
    q, ans, sols = tmpl(rng)
    assert isinstance(ans, int) and ans >= 0, (tmpl.__name__, q, ans)
    prompt = "Question: %s\nAnswer:" % q
    comps = []
    for s in sols:
        c = " " + "\n".join(s) + "\n#### %d" % ans
        check_completion(c, ans)
        if c not in comps:
            comps.append(c)
    assert len(comps) >= 2, (tmpl.__name__, comps)
    assert "\n" not in q and "  " not in q, q
    return {"level": level, "template": tmpl.__name__, "prompt": prompt,
            "answer": ans, "completions": comps}


def level_plan(rng, n):
    counts = [round(n * f) for f in LEVEL_SHARE]
    counts[0] += n - sum(counts)
    plan = [1] * counts[0] + [2] * counts[1] + [3] * counts[2]
    rng.shuffle(plan)
    return plan


# --------------------------------------------------------------------------
# Output

def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def write_gz(path, rows):
    data = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
    with open(path, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0,
                           compresslevel=9) as g:
            g.write(data)


def write_plain(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(dumps(r) + "\n")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


SAMPLE_TEXT = [
    {"text": "The quick brown fox jumps over the lazy dog."},
    {"text": "Once upon a time, a small robot learned to count to ten."},
    {"text": "Line one of a short poem,\nand line two follows after."},
    {"text": "We met at the caf\u00e9 on the corner and shared a cr\u00e8me br\u00fbl\u00e9e \U0001F370."},
    {"text": "Rain fell all afternoon, so the children built a fort out of cushions."},
    {"text": "A prime number has exactly two divisors: one and itself."},
    {"text": "\"Quotes\", back\\slashes and tabs\tare escaped in JSON."},
    {"text": "The train left at 7:45 and arrived two hours later."},
]

SAMPLE_MESSAGES = [
    {"messages": [{"role": "user", "content": "What is 2 + 3?"},
                  {"role": "assistant", "content": "2 + 3 = 5."}]},
    {"messages": [{"role": "system", "content": "You are a concise math tutor."},
                  {"role": "user", "content": "Tom has 4 apples and buys 3 more. How many does he have?"},
                  {"role": "assistant", "content": "4 + 3 = 7. He has 7 apples."}]},
    {"messages": [{"role": "user", "content": "Name a color."},
                  {"role": "assistant", "content": "Blue."},
                  {"role": "user", "content": "Name another one."},
                  {"role": "assistant", "content": "Green."}]},
    {"messages": [{"role": "user", "content": "Say hello in French."},
                  {"role": "assistant", "content": "Bonjour ! \u00c7a va ? \U0001F44B"}]},
    {"messages": [{"role": "system", "content": "Answer with one word."},
                  {"role": "user", "content": "Is ice cold?"},
                  {"role": "assistant", "content": "Yes."},
                  {"role": "user", "content": "Is fire cold?"},
                  {"role": "assistant", "content": "No."}]},
    {"messages": [{"role": "user", "content": "Write two short lines."},
                  {"role": "assistant", "content": "The sun is up.\nThe birds sing."}]},
]

SAMPLE_PROMPT_COMPLETION = [
    {"prompt": "Question: What is 3 + 4?\nAnswer:", "completion": " 3 + 4 = 7.\n#### 7"},
    {"prompt": "Question: Mia has 9 shells and gives 2 to Ben. How many shells does Mia have left?\nAnswer:",
     "completion": " 9 - 2 = 7.\n#### 7"},
    {"prompt": "Translate to French: cheese", "completion": " fromage"},
    {"prompt": "", "completion": "A completion with an empty prompt."},
    {"prompt": "A prompt with an empty completion.", "completion": ""},
    {"prompt": "The capital of France is", "completion": " Paris."},
    {"prompt": "Continue: na\u00efve caf\u00e9 \u2192", "completion": " r\u00e9sum\u00e9 \u2615"},
    {"prompt": "List two fruits:\n", "completion": "- apple\n- pear"},
]


README = """# data/arith — bundled demonstration data

Synthetic GSM8k-style math word problems with short step-by-step worked
solutions, made by `scripts/gen_arith.py` (standard library only, fixed seed
{seed}). Regenerate from the repository root with

    /usr/bin/python3 scripts/gen_arith.py

which rewrites byte-identical files (the gzip header holds no file name and
mtime 0).

## Format

Gzipped JSONL, UTF-8, one object per line, keys `prompt` then `completion`:

    {example}

- prompt: `Question: <problem text>\\nAnswer:`
- completion: starts with a space, one reasoning step per line, arithmetic
  written as `a + b = c`, `a - b = c`, `a * b = c`, and a last line `#### N`
  (no trailing newline). The answer is the integer after the last `####`;
  all answers are non-negative integers, checked by the generator.

## Contents

| file | problems | rows | level 1 / 2 / 3 (problems) | level 1 / 2 / 3 (rows) | bytes | sha256 |
|---|---|---|---|---|---|---|
| train.jsonl.gz | {tr_p} | {tr_r} | {tr_pl} | {tr_rl} | {tr_b} | `{tr_h}` |
| eval.jsonl.gz | {ev_p} | {ev_r} | {ev_pl} | {ev_rl} | {ev_b} | `{ev_h}` |

Levels: 1 (40%) one step with small numbers (single-digit +, -, and
2-5 times a single digit); 2 (35%) two steps with numbers mostly under 100;
3 (25%) three steps with 2- and 3-digit numbers, each with at least one
carry or borrow. 20 templates (7 / 7 / 6), with varied names, objects and
verbs.

Train holds each problem 2-4 times with different worked solutions
(different wording, order of steps, or operand order such as `3 * 12` vs
`12 * 3`), rows shuffled. Eval holds each problem once with one reference
solution. No prompt appears in both splits, and no prompt appears twice as
a separate problem within a split.
"""


def main():
    rng = random.Random(SEED)

    # eval first
    eval_probs, seen = [], set()
    for level in level_plan(rng, N_EVAL):
        while True:
            p = make_problem(rng, level)
            if p["prompt"] not in seen:
                break
        seen.add(p["prompt"])
        eval_probs.append(p)
    eval_prompts = set(seen)

    train_probs = []
    for level in level_plan(rng, N_TRAIN_PROBLEMS):
        while True:
            p = make_problem(rng, level)
            if p["prompt"] not in seen:
                break
        seen.add(p["prompt"])
        train_probs.append(p)

    eval_rows, eval_lv = [], []
    for p in eval_probs:
        eval_rows.append({"prompt": p["prompt"],
                          "completion": rng.choice(p["completions"])})
        eval_lv.append(p["level"])

    train_rows = []
    for p in train_probs:
        k = min(rng.randint(2, 4), len(p["completions"]))
        for c in rng.sample(p["completions"], k):
            train_rows.append(({"prompt": p["prompt"], "completion": c}, p["level"]))
    # shuffle until no two adjacent rows share a prompt (deterministic: the
    # same seed always takes the same number of tries)
    while True:
        rng.shuffle(train_rows)
        if all(train_rows[i][0]["prompt"] != train_rows[i - 1][0]["prompt"]
               for i in range(1, len(train_rows))):
            break
    train_lv = [lv for _, lv in train_rows]
    train_rows = [r for r, _ in train_rows]

    # checks
    assert len(eval_rows) == N_EVAL
    assert len(train_rows) >= 20000, len(train_rows)
    tr_prompts = {r["prompt"] for r in train_rows}
    ev_prompts = [r["prompt"] for r in eval_rows]
    assert len(set(ev_prompts)) == N_EVAL
    assert not (tr_prompts & set(ev_prompts))
    assert tr_prompts.isdisjoint(eval_prompts)
    assert len(tr_prompts) == N_TRAIN_PROBLEMS
    for i in range(1, len(train_rows)):
        assert train_rows[i]["prompt"] != train_rows[i - 1]["prompt"], i
    assert len({(r["prompt"], r["completion"]) for r in train_rows}) == len(train_rows)
    for r in train_rows + eval_rows:
        m = re.search(r"#### (\d+)$", r["completion"])
        assert m, r
        check_completion(r["completion"], int(m.group(1)))

    os.makedirs(ARITH_DIR, exist_ok=True)
    os.makedirs(SAMPLES_DIR, exist_ok=True)
    tr_path = os.path.join(ARITH_DIR, "train.jsonl.gz")
    ev_path = os.path.join(ARITH_DIR, "eval.jsonl.gz")
    write_gz(tr_path, train_rows)
    write_gz(ev_path, eval_rows)
    write_plain(os.path.join(SAMPLES_DIR, "text.jsonl"), SAMPLE_TEXT)
    write_plain(os.path.join(SAMPLES_DIR, "messages.jsonl"), SAMPLE_MESSAGES)
    write_plain(os.path.join(SAMPLES_DIR, "prompt_completion.jsonl"),
                SAMPLE_PROMPT_COMPLETION)

    def per_level(lvs):
        return " / ".join(str(lvs.count(lv)) for lv in (1, 2, 3))

    info = dict(
        seed=SEED,
        example=dumps(eval_rows[0]),
        tr_p=len(train_probs), tr_r=len(train_rows),
        tr_pl=per_level([p["level"] for p in train_probs]),
        tr_rl=per_level(train_lv), tr_b=os.path.getsize(tr_path),
        tr_h=sha256(tr_path),
        ev_p=len(eval_probs), ev_r=len(eval_rows),
        ev_pl=per_level([p["level"] for p in eval_probs]),
        ev_rl=per_level(eval_lv), ev_b=os.path.getsize(ev_path),
        ev_h=sha256(ev_path),
    )
    with open(os.path.join(ARITH_DIR, "README.md"), "w", encoding="utf-8",
              newline="\n") as f:
        f.write(README.format(**info))

    print("train: %d problems (%s), %d rows (%s), %d bytes, sha256 %s" % (
        info["tr_p"], info["tr_pl"], info["tr_r"], info["tr_rl"],
        info["tr_b"], info["tr_h"]))
    print("eval:  %d problems (%s), %d rows (%s), %d bytes, sha256 %s" % (
        info["ev_p"], info["ev_pl"], info["ev_r"], info["ev_rl"],
        info["ev_b"], info["ev_h"]))


if __name__ == "__main__":
    main()
