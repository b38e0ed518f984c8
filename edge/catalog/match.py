"""Normalised artist and title keys, so "Beyoncé - Halo (Remastered)" finds "beyonce halo"."""
from __future__ import annotations

import logging
import re
import unicodedata

logger = logging.getLogger(__name__)

_VERSION_WORDS = (r"feat|ft|featuring|with|remaster|remastered|live|mono|stereo|version|edit|"
                  r"mix|single|bonus|deluxe|explicit|clean")
_BRACKETED = re.compile(rf"[(\[][^)\]]*\b(?:{_VERSION_WORDS})\b[^)\]]*[)\]]")
_DASH_SUFFIX = re.compile(rf"\s+-\s+[^-]*\b(?:{_VERSION_WORDS})\b.*$")
_FEAT_SUFFIX = re.compile(r"\s(?:feat|ft|featuring)\b\.?\s.*$")
_APOSTROPHES = re.compile(r"['\u2019\u02bc`]")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_ARTIST_SPLIT = re.compile(r"\s*(?:;|,|/|&|\+|\bx\b|\band\b|\bfeat\b\.?|\bft\b\.?|\bfeaturing\b|"
                           r"\bwith\b)\s*")


def fold(text: str) -> str:
    """Casefolded, accents stripped (NFKD minus combining marks), whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


def _words(text: str) -> str:
    text = _APOSTROPHES.sub("", text.replace("&", " and "))
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def title_key(title: str) -> str:
    """Matching key of a title: no "(feat ...)", "- Remastered 2011", "(Live)", punctuation."""
    text = fold(title)
    stripped = _FEAT_SUFFIX.sub("", _DASH_SUFFIX.sub("", _BRACKETED.sub(" ", text)))
    return _words(stripped) or _words(text)


def artist_key(artist: str) -> str:
    """Matching key of one artist name: folded, no punctuation, no leading "the"."""
    words = _words(fold(artist))
    return words[4:] if words.startswith("the ") else words


def artist_keys(artists: str) -> set[str]:
    """Keys for the whole credit and for each artist in it ("A feat. B", "A; B", "['A', 'B']")."""
    text = fold(artists).strip("[]")
    text = re.sub(r"""(^|,\s*)['"]|['"](?=\s*,|$)""", r"\1", text)   # Python-list style credits
    keys = {artist_key(text)}
    keys.update(artist_key(part) for part in _ARTIST_SPLIT.split(text))
    return {k for k in keys if k}
