"""The story grammar: the course's embedded corpus, and an exact oracle for it.

A story is three or four sentences about one character, one object and one place:

    mia found a red kite in the park . she played with it all day . mia was happy .
    leo loses his old map at the beach . he looks for the map again . he searches for it for hours . he is sad .

Each story is drawn by a fixed sequence of choices (name, tense and plot, adjective, object, place,
one or two middle sentences, the ending). Different choices always give different word sequences,
so a story's probability is the product of the probabilities of its choices, and

- ``log_prob(story)`` is exact (and -inf for anything the grammar cannot produce);
- ``entropy()`` is exact: H = E[sum over choice points of the entropy of that choice];
- ``is_valid(story, explain=True)`` says which rule a rejected story breaks.

The long-range structure a model has to learn, and that a bigram model cannot see:

- agreement: the pronouns (she/he, her/his) follow the character's name, sentences apart;
- a consistent object: "the kite" later is the object the first sentence introduced;
- the plot decides the middle and the ending: found -> played with it -> happy,
  lost -> looked for it -> sad;
- one tense for the whole story: found/played/was or finds/plays/is.

``StoryGrammar.small()`` is a configuration with a few hundred stories, small enough to enumerate.
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


# (past, present) forms of each verb phrase of a middle sentence, by plot
FOUND_ACTIONS = (("played with", "plays with"), ("looked at", "looks at"), ("cleaned", "cleans"),
                 ("carried", "carries"), ("hugged", "hugs"), ("showed everyone", "shows everyone"))
LOST_ACTIONS = (("looked for", "looks for"), ("searched for", "searches for"), ("asked about", "asks about"),
                ("thought about", "thinks about"), ("cried about", "cries about"), ("waited for", "waits for"))


@dataclass(frozen=True)
class GrammarConfig:
    """Word lists and choice probabilities. Names are uniform; other lists get Zipf weights."""

    girls: tuple[str, ...] = ("mia", "lily", "emma", "zoe", "ava", "nora", "ella", "ruby", "lucy", "anna", "sara",
                              "maya", "ivy", "rosa", "lena", "kate", "alice", "clara", "grace", "hana", "julia",
                              "lara", "mila", "nina", "olive", "piper", "sofia", "tara", "vera", "willa")
    boys: tuple[str, ...] = ("leo", "sam", "max", "ben", "tom", "jack", "finn", "noah", "eli", "owen", "luke",
                             "adam", "theo", "ryan", "omar", "paul", "alex", "carl", "dan", "ezra", "felix",
                             "hugo", "ian", "jonah", "kai", "liam", "milo", "nico", "oscar", "rex")
    adjectives: tuple[str, ...] = ("red", "blue", "little", "big", "green", "old", "shiny", "new", "yellow",
                                   "soft", "pink", "tiny", "purple", "striped", "golden", "funny")
    objects: tuple[str, ...] = ("kite", "ball", "book", "hat", "toy", "boat", "shell", "key", "coin", "drum",
                                "bell", "cup", "box", "map", "robot", "teddy", "scarf", "whistle", "marble",
                                "feather", "crayon", "ribbon", "sticker", "puzzle")
    # place -> preposition
    places: tuple[tuple[str, str], ...] = (("park", "in"), ("garden", "in"), ("beach", "at"), ("forest", "in"),
                                           ("yard", "in"), ("lake", "at"), ("kitchen", "in"), ("library", "in"),
                                           ("zoo", "at"), ("market", "at"), ("farm", "at"), ("field", "in"),
                                           ("bus", "on"), ("hill", "on"), ("station", "at"), ("attic", "in"))
    found_actions: tuple[tuple[str, str], ...] = FOUND_ACTIONS
    lost_actions: tuple[tuple[str, str], ...] = LOST_ACTIONS
    times: tuple[str, ...] = ("all day", "again", "for hours", "every day", "after lunch", "before bed",
                              "with a friend", "at night")
    happy: tuple[str, ...] = ("happy", "glad", "proud", "excited")
    sad: tuple[str, ...] = ("sad", "upset", "lonely", "worried")
    p_two_middles: float = 0.5      # probability of a second middle sentence
    p_it: float = 0.5               # probability a middle sentence says "it" rather than "the OBJECT"
    p_name_in_ending: float = 0.5   # probability the ending names the character rather than "she"/"he"

    @cached_property
    def weights(self) -> dict[str, tuple[float, ...]]:
        n = len(self.girls) + len(self.boys)
        return {"name": (1.0 / n,) * n, "adjective": _zipf(len(self.adjectives)), "object": _zipf(len(self.objects)),
                "place": _zipf(len(self.places)), "found_action": _zipf(len(self.found_actions)),
                "lost_action": _zipf(len(self.lost_actions)), "time": _zipf(len(self.times)),
                "happy": _zipf(len(self.happy)), "sad": _zipf(len(self.sad))}


SMALL = GrammarConfig(girls=("mia",), boys=("leo",), adjectives=("red",), objects=("kite", "ball"),
                      places=(("park", "in"),), found_actions=FOUND_ACTIONS[:1], lost_actions=LOST_ACTIONS[:1],
                      times=("all day", "again"), happy=("happy",), sad=("sad",))

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


class StoryGrammar:
    """The probabilistic story grammar. ``StoryGrammar()`` is the course corpus; ``StoryGrammar.small()``
    is enumerable.

    >>> g = StoryGrammar()
    >>> story = g.sample(1, seed=0)[0]
    >>> g.is_valid(story), round(g.log_prob(story), 3) <= 0
    (True, True)
    """

    SPLITS = {"train": (100_000, 1), "validation": (2_000, 2), "test": (2_000, 3)}

    def __init__(self, config: GrammarConfig | None = None):
        self.config = config or GrammarConfig()
        c = self.config
        self._gender = {**{n: "she" for n in c.girls}, **{n: "he" for n in c.boys}}
        if len(self._gender) != len(c.girls) + len(c.boys):
            raise ValueError("config: a name is listed twice")
        self._names = c.girls + c.boys
        self._place_prep = dict(c.places)
        self._splits: dict[str, list[str]] = {}

    @classmethod
    def small(cls) -> StoryGrammar:
        """A configuration with 2 names, 2 objects, 1 place, ...: its few hundred stories can be enumerated."""
        return cls(SMALL)

    # ------------------------------------------------------------------ the derivation
    def _derive(self, choose: Choose) -> list[str]:
        """The generative story: every random choice goes through ``choose(key, options, probs, structural)``.

        ``structural`` marks the choices that change later *distributions* (not just later words):
        tense and plot, and the number of middle sentences. ``entropy()`` branches on those only.
        """
        c, w = self.config, self.config.weights
        name = self._names[choose("name", self._names, w["name"], False)]
        pron, poss = ("she", "her") if self._gender[name] == "she" else ("he", "his")
        tense, plot = [(t, p) for t in TENSES for p in PLOTS][choose("tense_plot", range(4), (0.25,) * 4, True)]
        ti = TENSES.index(tense)
        adj = c.adjectives[choose("adjective", c.adjectives, w["adjective"], False)]
        obj = c.objects[choose("object", c.objects, w["object"], False)]
        place, prep = c.places[choose("place", c.places, w["place"], False)]
        words = [name, S1_VERBS[tense, plot], "a" if plot == "found" else poss, adj, obj, prep, "the", place, "."]
        n_middle = 1 + choose("n_middle", (1, 2), (1 - c.p_two_middles, c.p_two_middles), True)
        actions = c.found_actions if plot == "found" else c.lost_actions
        for _ in range(n_middle):
            action = actions[choose("action", actions, w[f"{plot}_action"], False)][ti]
            ref = ["it"] if choose("it", (True, False), (c.p_it, 1 - c.p_it), False) == 0 else ["the", obj]
            time = c.times[choose("time", c.times, w["time"], False)]
            words += [pron, *action.split(), *ref, *time.split(), "."]
        subject = name if choose("ending_subject", (True, False), (c.p_name_in_ending, 1 - c.p_name_in_ending),
                                 False) == 0 else pron
        feelings = c.happy if plot == "found" else c.sad
        feeling = feelings[choose("feeling", feelings, w["happy" if plot == "found" else "sad"], False)]
        return words + [subject, ("was", "is")[ti], feeling, "."]

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

    def split(self, name: str) -> list[str]:
        """The fixed splits: "train" (100,000 draws with seed 1, minus any story that is also in
        "validation" or "test"), "validation" (2,000, seed 2) and "test" (2,000, seed 3)."""
        check_choice("split", name, self.SPLITS)
        if name not in self._splits:
            n, seed = self.SPLITS[name]
            stories = self.sample(n, seed)
            if name == "train":
                held_out = set(self.split("validation")) | set(self.split("test"))
                stories = [s for s in stories if s not in held_out]
            self._splits[name] = stories
        return list(self._splits[name])

    def enumerate(self, limit: int = 1_000_000) -> Iterator[tuple[str, float]]:
        """Every story with its log-probability, by walking every branch of the derivation.
        Only for small configurations: raises ValueError once more than ``limit`` are produced."""
        count = 0
        stack: list[list[int]] = [[]]
        while stack:
            prefix = stack.pop()
            depth, log_p = 0, 0.0
            branches: list[list[int]] = []

            def choose(key, options, probs, structural):
                nonlocal depth, log_p
                if depth < len(prefix):
                    i = prefix[depth]
                else:
                    i = 0
                    branches.extend(prefix + [j] for j in range(1, len(probs)))
                    prefix.append(0)
                depth += 1
                log_p += math.log(probs[i])
                return i

            words = self._derive(choose)
            stack.extend(branches)
            count += 1
            if count > limit:
                raise ValueError(f"the grammar has more than limit={limit} stories; enumerate a small one")
            yield " ".join(words), log_p

    # ------------------------------------------------------------------ exact quantities
    def entropy(self) -> float:
        """The exact entropy in nats per story, H = E[sum_k H(choice_k)], since distinct choices give distinct
        stories. Branches on the structural choices and adds the entropy of every other choice point."""
        total = 0.0
        stack: list[list[int]] = [[]]
        while stack:
            prefix = stack.pop()
            depth, weight, h = 0, 1.0, 0.0
            branches: list[list[int]] = []

            def choose(key, options, probs, structural):
                nonlocal depth, weight, h
                if not structural:
                    h += -sum(p * math.log(p) for p in probs if p > 0)
                    return 0
                if depth < len(prefix):
                    i = prefix[depth]
                else:
                    i = 0
                    branches.extend(prefix + [j] for j in range(1, len(probs)))
                    prefix.append(0)
                depth += 1
                weight *= probs[i]
                h += -math.log(probs[i])  # contributes E[-log p] = H of this structural choice
                return i

            self._derive(choose)
            stack.extend(branches)
            total += weight * h
        return total

    @cached_property
    def vocab(self) -> list[str]:
        """Every word and punctuation token a story can contain, in a fixed order."""
        c = self.config
        words = list(self._names) + ["found", "finds", "lost", "loses", "a", "her", "his", "she", "he", "it",
                                     "the", "was", "is", "."]
        words += list(c.adjectives) + list(c.objects) + [p for p, _ in c.places] + [q for _, q in c.places]
        for pair in c.found_actions + c.lost_actions:
            for phrase in pair:
                words += phrase.split()
        for t in c.times:
            words += t.split()
        words += list(c.happy) + list(c.sad)
        return list(dict.fromkeys(words))

    @property
    def max_tokens(self) -> int:
        """The length in tokens of the longest story."""
        c = self.config
        middle = 1 + max(len(a.split()) for pair in c.found_actions + c.lost_actions for a in pair) + 2 + \
            max(len(t.split()) for t in c.times) + 1
        return 9 + 2 * middle + 4

    def tokenizer(self):
        """The word-level tokenizer of this grammar: ``[PAD]``, ``[MASK]``, then ``vocab``."""
        from .text import WordTokenizer

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
        if len(sentences) not in (3, 4):
            raise InvalidStory(f"a story has 3 or 4 sentences; this one has {len(sentences)}")

        def take(key: str, value, options: Sequence, probs: Sequence[float]):
            d.choices[key] = value
            d.log_prob += math.log(probs[list(options).index(value)])

        # sentence 1: NAME found a ADJ OBJECT PREP the PLACE
        s = sentences[0]
        if len(s) != 8 or s[0] not in self._gender:
            raise InvalidStory("sentence 1 must be 'NAME found|finds|lost|loses a|her|his ADJECTIVE OBJECT "
                               "in|at|on the PLACE'")
        name = s[0]
        take("name", name, self._names, w["name"])
        pron, poss = ("she", "her") if self._gender[name] == "she" else ("he", "his")
        verb = {v: k for k, v in S1_VERBS.items()}.get(s[1])
        if verb is None:
            raise InvalidStory(f"sentence 1's verb must be found, finds, lost or loses, not {s[1]!r}")
        tense, plot = verb
        ti = TENSES.index(tense)
        take("tense_plot", (tense, plot), list(S1_VERBS), (0.25,) * 4)
        det = "a" if plot == "found" else poss
        if s[2] != det:
            why = f"{name} is a {'girl' if pron == 'she' else 'boy'}" if plot == "lost" else "a found thing is 'a'"
            raise InvalidStory(f"sentence 1 says {s[2]!r} where it needs {det!r} ({why})")
        if s[3] not in c.adjectives:
            raise InvalidStory(f"{s[3]!r} is not an adjective of the grammar")
        take("adjective", s[3], c.adjectives, w["adjective"])
        if s[4] not in c.objects:
            raise InvalidStory(f"{s[4]!r} is not an object of the grammar")
        obj = s[4]
        take("object", obj, c.objects, w["object"])
        place = s[7]
        if place not in self._place_prep or s[6] != "the":
            raise InvalidStory("sentence 1 must end with 'in|at|on the PLACE'")
        if s[5] != self._place_prep[place]:
            raise InvalidStory(f"one is {self._place_prep[place]!r} the {place}, not {s[5]!r} the {place}")
        take("place", (place, s[5]), c.places, w["place"])

        # middle sentences: PRON ACTION it|the OBJECT TIME
        n_middle = len(sentences) - 2
        take("n_middle", n_middle, (1, 2), (1 - c.p_two_middles, c.p_two_middles))
        actions = c.found_actions if plot == "found" else c.lost_actions
        other = c.lost_actions if plot == "found" else c.found_actions
        for k, s in enumerate(sentences[1:-1], start=2):
            if s[0] != pron:
                raise InvalidStory(f"sentence {k} begins with {s[0]!r}, but {name} is {pron!r}")
            rest = " ".join(s[1:]) + " "
            match = [a for a in actions if rest.startswith(a[ti] + " ")]
            if not match:
                if any(rest.startswith(a[1 - ti] + " ") for a in actions):
                    raise InvalidStory(f"sentence {k} changes the tense: the story began in the {tense} "
                                       f"('{S1_VERBS[tense, plot]}')")
                if any(rest.startswith(a[j] + " ") for a in other for j in (0, 1)):
                    raise InvalidStory(f"sentence {k}'s action does not follow the plot: {name} {plot} the {obj}")
                raise InvalidStory(f"sentence {k} has no action of the grammar after {pron!r}")
            action = max(match, key=lambda a: len(a[ti]))
            take("action", action, actions, w[f"{plot}_action"])
            rest = rest[len(action[ti]) + 1:].split()
            if rest[:1] == ["it"]:
                take("it", True, (True, False), (c.p_it, 1 - c.p_it))
                rest = rest[1:]
            elif rest[:1] == ["the"] and len(rest) > 1:
                if rest[1] != obj:
                    raise InvalidStory(f"sentence {k} refers to 'the {rest[1]}' but the object is the {obj}")
                take("it", False, (True, False), (c.p_it, 1 - c.p_it))
                rest = rest[2:]
            else:
                raise InvalidStory(f"sentence {k} must refer to the object as 'it' or 'the {obj}'")
            time = " ".join(rest)
            if time not in c.times:
                raise InvalidStory(f"sentence {k} ends with {time!r}, which is not a time phrase of the grammar")
            take("time", time, c.times, w["time"])

        # the ending: NAME|PRON was|is FEELING
        s = sentences[-1]
        if len(s) != 3:
            raise InvalidStory("the last sentence must be 'NAME|PRONOUN was|is FEELING'")
        if s[0] == name:
            take("ending_subject", True, (True, False), (c.p_name_in_ending, 1 - c.p_name_in_ending))
        elif s[0] == pron:
            take("ending_subject", False, (True, False), (c.p_name_in_ending, 1 - c.p_name_in_ending))
        else:
            raise InvalidStory(f"the ending is about {s[0]!r}, but the story is about {name} ({pron})")
        if s[1] != ("was", "is")[ti]:
            raise InvalidStory(f"the ending changes the tense: the story is in the {tense}")
        feelings = c.happy if plot == "found" else c.sad
        if s[2] not in feelings:
            raise InvalidStory(f"{name} {plot} the {obj}, so the ending cannot be {s[2]!r} "
                               f"(one of {', '.join(feelings)})")
        take("feeling", s[2], feelings, w["happy" if plot == "found" else "sad"])
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
