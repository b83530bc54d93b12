"""The Electra+LCL row's second view: a WordNet-synonym copy of every training text.

docs/method.md, LCL, and docs/method.md, Departures of the baselines: the original (Suresh and
Ong 2021) pairs every training text with a copy made once, before training, by nlpaug's
`SynonymAug(aug_src="wordnet")` at its defaults. That augmenter replaces ceil(30%) of a text's tokens, at least 1 and at most 10
(punctuation counts as tokens but is never picked, nor are determiners), each by a lemma drawn at
random from the WordNet synsets of the word (not the word itself, `_` and `-` written as spaces,
capitalised like the word). Here the same recipe is written afresh, seeded (the original's draw
was not), and with two differences: no part-of-speech tagger (NLTK's tagger is a model NLTK
downloads; no package ships it), so a word's synonyms come from every part of speech, as
nlpaug itself does for a word whose tag has no WordNet part of speech; and the text's own
spacing is kept around the replacements (nlpaug re-joins its tokens with spaces).

WordNet 3.0 is read from a folder with NLTK's corpus reader, offline: `EMOCAL_WORDNET`, else
Debian's /usr/share/wordnet (`apt-get install wordnet-base`), else `corpora/wordnet` under an NLTK
data folder (`python -m nltk.downloader wordnet`, unzipped). `wordnet_problem` says, before any
compute, what is missing and how to install it.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import math
import os
import random
import re
import string
import warnings
from collections.abc import Sequence
from pathlib import Path

WORDNET_ENV = "EMOCAL_WORDNET"
WORDNET_VERSION = "3.0"  # what nlpaug read through NLTK in 2021: the copy depends on it, so no other is taken
DEBIAN_WORDNET = "/usr/share/wordnet"
# nlpaug SynonymAug's defaults (aug_p, aug_min, aug_max), as the LCL code used it
SHARE, AT_LEAST, AT_MOST = 0.3, 1, 10
# the Penn Treebank's determiners (tag DT), which nlpaug never replaces; without a tagger, by word
DETERMINERS = frozenset("a an the this that these those all any each every some no another both either neither "
                        "half many such what whatever which whichever".split())
_FILES = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj", "index.adv",
          "noun.exc", "verb.exc", "adj.exc", "adv.exc")
# WordNet's 45 lexicographer files (lexnames(5WN)); NLTK's reader needs the file, Debian does not ship it
_LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
             "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
             "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
             "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
             "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
             "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
             "adj.ppl").split()
_TOKENS = re.compile(r"(\W)")  # nlpaug's word tokeniser: every non-word character is a token of its own
INSTALL = ("install WordNet 3.0: `apt-get install wordnet-base` (Debian, Ubuntu: /usr/share/wordnet), or "
           "`python -m nltk.downloader wordnet` and unzip ~/nltk_data/corpora/wordnet.zip there; or set "
           f"{WORDNET_ENV} to a folder holding its index.* and data.* files; or give the method "
           "teacher.lcl_second_view: dropout (or none)")


def wordnet_candidates() -> list[Path]:
    """Where WordNet is looked for, in order: the env var alone when set, else the usual folders."""
    if os.environ.get(WORDNET_ENV):
        return [Path(os.environ[WORDNET_ENV]).expanduser()]
    homes = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    homes += [Path.home() / "nltk_data", Path("/usr/share/nltk_data"), Path("/usr/local/share/nltk_data")]
    return [Path(DEBIAN_WORDNET), *(h / "corpora" / "wordnet" for h in homes)]


def _version(folder: Path) -> str | None:
    """The WordNet version data.adj's licence header names ("WordNet 3.0 Copyright ...")."""
    with open(folder / "data.adj", encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("  "):  # the header lines are indented; the data starts after
                return None
            if m := re.search(r"WordNet (\d+\.\d+) Copyright", line):
                return m.group(1)
    return None


def find_wordnet() -> tuple[Path | None, str]:
    """(the folder of WordNet 3.0, "") or (None, what is wrong and how to fix it)."""
    tried = []
    for folder in wordnet_candidates():
        missing = [f for f in _FILES if not (folder / f).is_file()]
        if missing:
            tried.append(f"{folder} ({'no folder' if not folder.is_dir() else 'no ' + ', '.join(missing[:3])})")
            continue
        version = _version(folder)
        if version != WORDNET_VERSION:
            tried.append(f"{folder} (WordNet {version or 'of unknown version'}, not {WORDNET_VERSION})")
            continue
        return folder, ""
    return None, f"WordNet {WORDNET_VERSION} not found (tried {'; '.join(tried)}); {INSTALL}"


def wordnet_problem() -> str | None:
    """Why the synonym copy cannot be made on this machine, or None (no file is read but a header)."""
    if importlib.util.find_spec("nltk") is None:  # importing it takes seconds; finding it, nothing
        return f"the synonym copy reads WordNet with NLTK, which is not installed: pip install nltk; and {INSTALL}"
    return find_wordnet()[1] or None


@functools.lru_cache(maxsize=1)
def load_wordnet():
    """NLTK's WordNet reader on the folder `find_wordnet` picks (about 3 s, once per process)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder, problem = find_wordnet()
    if folder is None:
        raise RuntimeError(problem)

    class FolderWordNet(WordNetCorpusReader):
        """WordNet from a plain folder: lexnames supplied when the folder lacks it (Debian's does),
        no mapping to other WordNet versions (only the multilingual data needs it)."""

        def open(self, file):
            if file == "lexnames" and not (folder / "lexnames").is_file():
                return io.StringIO("".join(f"{i:02d}\t{name}\t{i}\n" for i, name in enumerate(_LEXNAMES)))
            return super().open(file)

        def map_wn(self, version="wordnet"):
            return None

    # NLTK opens corpus files only under its data path (nltk.pathsec): add this folder to it
    if str(folder) not in nltk.data.path:
        nltk.data.path.append(str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used here
        return FolderWordNet(str(folder), None)


class SynonymCopier:
    """Replaces words by WordNet synonyms as nlpaug's SynonymAug does at its defaults (module docstring)."""

    def __init__(self, wordnet=None):
        self.wordnet = wordnet if wordnet is not None else load_wordnet()
        self._synonyms: dict[str, tuple[str, ...]] = {}

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Every lemma of every synset of `word` (morphy finds the base form), itself left out, in
        WordNet's order (so a seeded draw is reproducible)."""
        key = word.lower()
        if key not in self._synonyms:
            names = [lemma.name() for synset in self.wordnet.synsets(key) for lemma in synset.lemmas()]
            self._synonyms[key] = tuple(n for n in names if n.lower() != key)
        return self._synonyms[key]

    def copy(self, text: str, rng: random.Random) -> str:
        """`text` with ceil(30%) of its tokens (1 to 10) picked and, where WordNet has one, replaced."""
        pieces = _TOKENS.split(text)
        tokens = [i for i, p in enumerate(pieces) if p.strip()]
        if not tokens:
            return text
        count = min(AT_MOST, max(AT_LEAST, math.ceil(SHARE * len(tokens))))
        pickable = [i for i in tokens if pieces[i] not in string.punctuation and pieces[i].lower() not in DETERMINERS]
        for i in rng.sample(pickable, min(count, len(pickable))):
            options = self.synonyms(pieces[i])
            if options:
                word = rng.choice(options).replace("_", " ").replace("-", " ").lower()
                pieces[i] = word.capitalize() if _capitalised(pieces[i]) else word
        return "".join(pieces)

    def copies(self, texts: Sequence[str], seed: int) -> list[str]:
        """The synonym copy of every text, from one generator seeded with `seed`, in row order."""
        rng = random.Random(seed)
        return [self.copy(t, rng) for t in texts]


def _capitalised(word: str) -> bool:
    """nlpaug's 'capitalize' case: first letter upper, the rest lower (or a single upper letter)."""
    return word[:1].isupper() and (len(word) == 1 or word[1:].islower())
