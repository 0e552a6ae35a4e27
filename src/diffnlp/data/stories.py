"""The story grammar: the course's embedded corpus, and an exact oracle for it.

A story is four sentences about one character, one object and one place:

    mia found a red kite at the park . she sang about the kite all day .
        she laughed about it all night . she was happy .
    leo loses a brown map at the beach . he worries about the map all week .
        he asks about it all morning . he is very sad .

Each story is drawn by a fixed sequence of choices (name, tense and plot, adjective, object, place, the
verbs and times of the two middle sentences, the ending). Different choices always give different word
sequences, so a story's probability is the product of the probabilities of its choices, and

- ``log_prob(story)`` is exact (and -inf for anything the grammar cannot produce);
- ``entropy()`` is exact: H = E[sum over choice points of the entropy of that choice];
- ``is_valid(story, explain=True)`` says which rule a rejected story breaks.

The long-range structure a model has to learn, and that a bigram model cannot see:

- agreement: every pronoun (she/he) follows the character's name, sentences later;
- a consistent object: "the kite" in the second sentence is the object the first one introduced;
- the plot decides the middle and the ending: found -> sang about the kite -> happy,
  lost -> cried about the kite -> sad;
- one tense for the whole story: found/sang/was or finds/sings/is.

Every slot has a fixed length, so a story has 28 tokens, or 29 with the optional "very" of the ending.
Multi-word phrases have one free word each ("VERB about", "all TIME"), and every place takes "at the".
So the coupled choices are the long-range ones above, not neighbouring words: a masked model that
reveals several tokens at once fails only where the lesson wants it to.

``StoryGrammar.small()`` is a configuration with 128 stories, small enough to enumerate.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from .._checks import check_choice, check_int


def _zipf(n: int) -> tuple[float, ...]:
    """Gentle Zipf weights, p_k proportional to 1 / (k + 2): frequent and rare words, as in language."""
    w = [1.0 / (k + 2) for k in range(n)]
    s = sum(w)
    return tuple(x / s for x in w)


# (past, present) forms of each middle-sentence verb (followed by "about"), by plot
FOUND_ACTIONS = (("sang", "sings"), ("talked", "talks"), ("laughed", "laughs"), ("dreamed", "dreams"),
                 ("bragged", "brags"), ("wrote", "writes"))
LOST_ACTIONS = (("cried", "cries"), ("worried", "worries"), ("asked", "asks"), ("thought", "thinks"),
                ("wondered", "wonders"), ("fretted", "frets"))


@dataclass(frozen=True)
class GrammarConfig:
    """Word lists and choice probabilities. Names are uniform; other lists get Zipf weights."""

    girls: tuple[str, ...] = ("mia", "lily", "emma", "zoe", "ava", "nora", "ella", "ruby", "lucy", "anna", "sara",
                              "maya", "ivy", "rosa", "lena", "kate", "alice", "clara", "grace", "hana", "julia",
                              "lara", "mila", "nina", "olive", "piper", "sofia", "tara", "vera", "willa")
    boys: tuple[str, ...] = ("leo", "sam", "max", "ben", "tom", "jack", "finn", "noah", "eli", "owen", "luke",
                             "adam", "theo", "ryan", "omar", "paul", "alex", "carl", "dan", "ezra", "felix",
                             "hugo", "ian", "jonah", "kai", "liam", "milo", "nico", "oscar", "rex")
    adjectives: tuple[str, ...] = ("red", "blue", "little", "big", "green", "brown", "shiny", "new", "yellow",
                                   "soft", "pink", "tiny", "purple", "striped", "golden", "funny")
    objects: tuple[str, ...] = ("kite", "ball", "book", "hat", "toy", "boat", "shell", "key", "coin", "drum",
                                "bell", "cup", "box", "map", "robot", "teddy", "scarf", "whistle", "marble",
                                "feather", "crayon", "ribbon", "sticker", "puzzle")
    places: tuple[str, ...] = ("park", "beach", "zoo", "lake", "farm", "market", "library", "station", "pool",
                               "fair", "school", "museum", "playground", "river", "harbor", "bakery")
    found_actions: tuple[tuple[str, str], ...] = FOUND_ACTIONS
    lost_actions: tuple[tuple[str, str], ...] = LOST_ACTIONS
    times: tuple[str, ...] = ("day", "night", "week", "morning", "evening", "summer", "winter", "year")  # "all X"
    happy: tuple[str, ...] = ("happy", "glad", "proud", "excited")
    sad: tuple[str, ...] = ("sad", "upset", "lonely", "worried")
    p_very: float = 0.05            # probability the ending says "very" (the only change of length)

    @cached_property
    def weights(self) -> dict[str, tuple[float, ...]]:
        n = len(self.girls) + len(self.boys)
        return {"name": (1.0 / n,) * n, "adjective": _zipf(len(self.adjectives)), "object": _zipf(len(self.objects)),
                "place": _zipf(len(self.places)), "found_action": _zipf(len(self.found_actions)),
                "lost_action": _zipf(len(self.lost_actions)), "time": _zipf(len(self.times)),
                "happy": _zipf(len(self.happy)), "sad": _zipf(len(self.sad))}


SMALL = GrammarConfig(girls=("mia",), boys=("leo",), adjectives=("red",), objects=("kite", "ball"),
                      places=("park",), found_actions=FOUND_ACTIONS[:1], lost_actions=LOST_ACTIONS[:1],
                      times=("day", "night"), happy=("happy",), sad=("sad",))

TENSES = ("past", "present")
PLOTS = ("found", "lost")
S1_VERBS = {("past", "found"): "found", ("present", "found"): "finds",
            ("past", "lost"): "lost", ("present", "lost"): "loses"}


class InvalidStory(ValueError):
    """Raised by ``StoryGrammar.parse`` with the rule the story breaks."""


@dataclass
class _Derivation:
    """What a parse (or a generation) learns about a story: its choices and their log-probability."""

    log_prob: float = 0.0
    choices: dict = field(default_factory=dict)


Choose = Callable[[str, Sequence, Sequence[float], bool], int]


class _Replay:
    """A ``choose`` for walking the derivation: replay the choice indices of ``prefix``, then take option 0
    and queue the prefixes of the other options in ``branches``. Unless ``branch_on_all``, only structural
    choices branch; the others always take option 0. ``path`` records (probs, index, branched)."""

    def __init__(self, prefix: list[int], branch_on_all: bool):
        self.prefix, self.branch_on_all = prefix, branch_on_all
        self.taken: list[int] = []
        self.branches: list[list[int]] = []
        self.path: list[tuple[Sequence[float], int, bool]] = []

    def __call__(self, key: str, options: Sequence, probs: Sequence[float], structural: bool) -> int:
        if not (self.branch_on_all or structural):
            self.path.append((probs, 0, False))
            return 0
        depth = len(self.taken)
        if depth < len(self.prefix):
            i = self.prefix[depth]
        else:
            i = 0
            self.branches.extend(self.taken + [j] for j in range(1, len(probs)))
        self.taken.append(i)
        self.path.append((probs, i, True))
        return i


class StoryGrammar:
    """The probabilistic story grammar. ``StoryGrammar()`` is the course corpus; ``StoryGrammar.small()``
    is enumerable.

    >>> g = StoryGrammar()
    >>> story = g.sample(1, seed=0)[0]
    >>> g.is_valid(story), round(g.log_prob(story), 3) <= 0
    (True, True)
    """

    SPLITS = {"train": (1_000_000, 1), "validation": (2_000, 2), "test": (2_000, 3)}

    def __init__(self, config: GrammarConfig | None = None):
        self.config = config or GrammarConfig()
        c = self.config
        self._gender = {**{n: "she" for n in c.girls}, **{n: "he" for n in c.boys}}
        if len(self._gender) != len(c.girls) + len(c.boys):
            raise ValueError("config: a name is listed twice")
        self._names = c.girls + c.boys
        for field_name in ("girls", "boys", "adjectives", "objects", "places", "found_actions", "lost_actions",
                           "times", "happy", "sad"):
            values = getattr(c, field_name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"config.{field_name} must be a non-empty list without repeats, got {values!r}")
        verbs = [v for pair in c.found_actions + c.lost_actions for v in pair]
        if len(set(verbs)) != len(verbs):
            raise ValueError("config: a verb form is used by two actions, so stories would not parse uniquely")
        if not 0 < c.p_very < 1:
            raise ValueError(f"config.p_very={c.p_very} must lie strictly between 0 and 1")
        self._splits: dict[tuple[str, int], list[str]] = {}

    @classmethod
    def small(cls) -> StoryGrammar:
        """A configuration with 2 names, 2 objects, 1 place, ...: its 128 stories can be enumerated."""
        return cls(SMALL)

    # ------------------------------------------------------------------ the derivation
    def _derive(self, choose: Choose) -> list[str]:
        """The generative story: every random choice goes through ``choose(key, options, probs, structural)``.

        ``structural`` marks the choices that change later *distributions* (not just later words):
        tense and plot. ``entropy()`` branches on those only.
        """
        c, w = self.config, self.config.weights
        name = self._names[choose("name", self._names, w["name"], False)]
        pron = self._gender[name]
        tense, plot = [(t, p) for t in TENSES for p in PLOTS][choose("tense_plot", range(4), (0.25,) * 4, True)]
        ti = TENSES.index(tense)
        adj = c.adjectives[choose("adjective", c.adjectives, w["adjective"], False)]
        obj = c.objects[choose("object", c.objects, w["object"], False)]
        place = c.places[choose("place", c.places, w["place"], False)]
        words = [name, S1_VERBS[tense, plot], "a", adj, obj, "at", "the", place, "."]
        actions = c.found_actions if plot == "found" else c.lost_actions
        for ref in (["the", obj], ["it"]):
            verb = actions[choose("action", actions, w[f"{plot}_action"], False)][ti]
            time = c.times[choose("time", c.times, w["time"], False)]
            words += [pron, verb, "about", *ref, "all", time, "."]
        very = ["very"] if choose("very", (True, False), (c.p_very, 1 - c.p_very), False) == 0 else []
        feelings = c.happy if plot == "found" else c.sad
        feeling = feelings[choose("feeling", feelings, w["happy" if plot == "found" else "sad"], False)]
        return words + [pron, ("was", "is")[ti], *very, feeling, "."]

    # ------------------------------------------------------------------ sampling
    def sample_with_log_prob(self, n: int, seed: int = 0) -> list[tuple[str, float]]:
        """``n`` stories with the log-probability recorded while generating them (the sum of log p of
        every choice made)."""
        n = check_int("n", n, low=0)
        rng = random.Random(check_int("seed", seed))
        cumulative: dict[tuple, list[float]] = {}

        out = []
        for _ in range(n):
            log_p = 0.0

            def choose(key, options, probs, structural):
                nonlocal log_p
                cum = cumulative.get(tuple(probs))
                if cum is None:
                    cum = cumulative.setdefault(tuple(probs), [sum(probs[:i + 1]) for i in range(len(probs))])
                i = min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(probs) - 1)
                log_p += math.log(probs[i])
                return i

            out.append((" ".join(self._derive(choose)), log_p))
        return out

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` stories, deterministic given ``seed``."""
        return [s for s, _ in self.sample_with_log_prob(n, seed)]

    def split(self, name: str, n: int | None = None) -> list[str]:
        """The fixed splits: "train" (up to 1,000,000 draws with seed 1, minus any story that is also in
        "validation" or "test"), "validation" (2,000, seed 2) and "test" (2,000, seed 3).
        ``n`` takes the first ``n`` draws of the split (the same stories whatever ``n``)."""
        check_choice("split", name, self.SPLITS)
        size, seed = self.SPLITS[name]
        n = size if n is None else check_int("n", n, low=1, high=size)
        key = (name, n)
        if key not in self._splits:
            stories = self.sample(n, seed)
            if name == "train":
                held_out = set(self.split("validation")) | set(self.split("test"))
                stories = [s for s in stories if s not in held_out]
            self._splits[key] = stories
        return list(self._splits[key])

    def _paths(self, branch_on_all: bool) -> Iterator[tuple[list[str], list[tuple[Sequence[float], int, bool]]]]:
        """Walk the derivation depth first: yield (words, [(probs, chosen index, branched)]) for every path.
        With ``branch_on_all`` every choice branches (all stories); otherwise only the structural ones do,
        and the other choices take their first option."""
        stack: list[list[int]] = [[]]
        while stack:
            replay = _Replay(stack.pop(), branch_on_all)
            words = self._derive(replay)
            stack.extend(replay.branches)
            yield words, replay.path

    def enumerate(self, limit: int = 1_000_000) -> Iterator[tuple[str, float]]:
        """Every story with its log-probability, by walking every branch of the derivation.
        Only for small configurations: raises ValueError once more than ``limit`` are produced."""
        for count, (words, path) in enumerate(self._paths(branch_on_all=True), start=1):
            if count > limit:
                raise ValueError(f"the grammar has more than limit={limit} stories; enumerate a small one")
            yield " ".join(words), sum(math.log(probs[i]) for probs, i, _ in path)

    # ------------------------------------------------------------------ exact quantities
    def entropy(self) -> float:
        """The exact entropy in nats per story, H = E[sum_k H(choice_k)], since distinct choices give distinct
        stories. Branches on the structural choices and adds the entropy of every other choice point."""
        total = 0.0
        for _, path in self._paths(branch_on_all=False):
            weight = math.prod(probs[i] for probs, i, branched in path if branched)
            h = sum(-math.log(probs[i]) if branched else -sum(p * math.log(p) for p in probs if p > 0)
                    for probs, i, branched in path)
            total += weight * h
        return total

    @cached_property
    def vocab(self) -> list[str]:
        """Every word and punctuation token a story can contain, in a fixed order."""
        c = self.config
        words = list(self._names) + ["found", "finds", "lost", "loses", "a", "at", "the", "she", "he", "about",
                                     "it", "all", "was", "is", "very", "."]
        words += list(c.adjectives) + list(c.objects) + list(c.places)
        for pair in c.found_actions + c.lost_actions:
            words += list(pair)
        words += list(c.times)
        words += list(c.happy) + list(c.sad)
        return list(dict.fromkeys(words))

    @property
    def max_tokens(self) -> int:
        """The length in tokens of the longest story: 9 + 8 + 7 + 5."""
        return 29

    def word_classes(self) -> dict[str, str]:
        """Each word's role in the grammar ("name", "object", "place", ...; "other" for the fixed words)."""
        c = self.config
        groups = {"name": c.girls + c.boys, "adjective": c.adjectives, "object": c.objects, "place": c.places,
                  "verb": [w for pair in c.found_actions + c.lost_actions for w in pair] + list(S1_VERBS.values()),
                  "time": c.times, "feeling": c.happy + c.sad}
        out = {w: "other" for w in self.vocab}
        for role, words in groups.items():
            out.update({w: role for w in words})
        return out

    def tokenizer(self):
        """The word-level tokenizer of this grammar: ``[PAD]``, ``[MASK]``, then ``vocab``."""
        from .tokenizers import WordTokenizer

        return WordTokenizer(self.vocab)

    # ------------------------------------------------------------------ parsing
    def parse(self, story: str) -> _Derivation:
        """Parse a story; return its choices and exact log-probability, or raise ``InvalidStory`` naming
        the broken rule."""
        if not isinstance(story, str):
            raise TypeError(f"story must be a str, got {type(story).__name__}")
        c, w = self.config, self.config.weights
        words = story.split()
        d = _Derivation()
        if not words:
            raise InvalidStory("the story is empty")
        if " ".join(words) != story:
            raise InvalidStory("tokens must be separated by single spaces, with none at the ends")
        unknown = [x for x in words if x not in set(self.vocab)]
        if unknown:
            raise InvalidStory(f"{unknown[0]!r} is not a word of the grammar")
        if words[-1] != ".":
            raise InvalidStory("the story does not end with '.'")
        sentences, cur = [], []
        for x in words:
            cur.append(x)
            if x == ".":
                sentences.append(cur[:-1])
                cur = []
        if len(sentences) != 4:
            raise InvalidStory(f"a story has 4 sentences; this one has {len(sentences)}")
        for k, sentence in enumerate(sentences, start=1):
            if not sentence:
                raise InvalidStory(f"sentence {k} is empty")

        def take(key: str, value, options: Sequence, probs: Sequence[float]):
            d.choices[key] = value
            d.log_prob += math.log(probs[list(options).index(value)])

        # sentence 1: NAME found|finds|lost|loses a ADJECTIVE OBJECT at the PLACE
        s = sentences[0]
        if len(s) != 8 or s[0] not in self._gender:
            raise InvalidStory("sentence 1 must be 'NAME found|finds|lost|loses a ADJECTIVE OBJECT at the PLACE'")
        name = s[0]
        take("name", name, self._names, w["name"])
        pron = self._gender[name]
        verb = {v: k for k, v in S1_VERBS.items()}.get(s[1])
        if verb is None:
            raise InvalidStory(f"sentence 1's verb must be found, finds, lost or loses, not {s[1]!r}")
        tense, plot = verb
        ti = TENSES.index(tense)
        take("tense_plot", (tense, plot), list(S1_VERBS), (0.25,) * 4)
        if s[2] != "a" or s[5:7] != ["at", "the"]:
            raise InvalidStory("sentence 1 must be 'NAME found|finds|lost|loses a ADJECTIVE OBJECT at the PLACE'")
        if s[3] not in c.adjectives:
            raise InvalidStory(f"{s[3]!r} is not an adjective of the grammar")
        take("adjective", s[3], c.adjectives, w["adjective"])
        if s[4] not in c.objects:
            raise InvalidStory(f"{s[4]!r} is not an object of the grammar")
        obj = s[4]
        take("object", obj, c.objects, w["object"])
        if s[7] not in c.places:
            raise InvalidStory(f"{s[7]!r} is not a place of the grammar")
        take("place", s[7], c.places, w["place"])

        # middle sentences: PRON VERB about the OBJECT all TIME, then PRON VERB about it all TIME
        actions = c.found_actions if plot == "found" else c.lost_actions
        other = c.lost_actions if plot == "found" else c.found_actions
        for k, (s, ref) in enumerate(zip(sentences[1:3], (["the", obj], ["it"])), start=2):
            shape = f"'{pron} VERB about {' '.join(ref)} all TIME'"
            if len(s) != 5 + len(ref) or s[2] != "about" or s[-2] != "all":
                raise InvalidStory(f"sentence {k} must be {shape}")
            if s[0] != pron:
                raise InvalidStory(f"sentence {k} begins with {s[0]!r}, but {name} is {pron!r}")
            match = [a for a in actions if a[ti] == s[1]]
            if not match:
                if any(a[1 - ti] == s[1] for a in actions):
                    raise InvalidStory(f"sentence {k} changes the tense: the story began in the {tense} "
                                       f"('{S1_VERBS[tense, plot]}')")
                if any(s[1] in a for a in other):
                    raise InvalidStory(f"sentence {k}'s verb {s[1]!r} does not follow the plot: {name} {plot} "
                                       f"the {obj}")
                raise InvalidStory(f"sentence {k} has no verb of the grammar after {pron!r}")
            take("action", match[0], actions, w[f"{plot}_action"])
            if s[3:3 + len(ref)] != ref:
                if ref[0] == "the" and s[3] == "the":
                    raise InvalidStory(f"sentence {k} refers to 'the {s[4]}' but the object is the {obj}")
                raise InvalidStory(f"sentence {k} must be {shape}")
            if s[-1] not in c.times:
                raise InvalidStory(f"sentence {k} ends with 'all {s[-1]}', which is not a time of the grammar")
            take("time", s[-1], c.times, w["time"])

        # the ending: PRON was|is [very] FEELING
        s = sentences[-1]
        if len(s) not in (3, 4) or (len(s) == 4 and s[2] != "very"):
            raise InvalidStory("the last sentence must be 'PRONOUN was|is [very] FEELING'")
        if s[0] != pron:
            raise InvalidStory(f"the ending is about {s[0]!r}, but {name} is {pron!r}")
        if s[1] != ("was", "is")[ti]:
            raise InvalidStory(f"the ending changes the tense: the story is in the {tense}")
        take("very", len(s) == 4, (True, False), (c.p_very, 1 - c.p_very))
        feelings = c.happy if plot == "found" else c.sad
        if s[-1] not in feelings:
            raise InvalidStory(f"{name} {plot} the {obj}, so the ending cannot be {s[-1]!r} "
                               f"(one of {', '.join(feelings)})")
        take("feeling", s[-1], feelings, w["happy" if plot == "found" else "sad"])
        return d

    def log_prob(self, story: str) -> float:
        """The exact log-probability of ``story`` in nats; -inf if the grammar cannot produce it."""
        try:
            return self.parse(story).log_prob
        except InvalidStory:
            return -math.inf

    def is_valid(self, story: str, explain: bool = False):
        """True if the grammar can produce ``story``. With ``explain=True`` return ``(valid, reason)``,
        where ``reason`` names the broken rule (None for a valid story)."""
        try:
            self.parse(story)
        except InvalidStory as exc:
            return (False, str(exc)) if explain else False
        return (True, None) if explain else True
