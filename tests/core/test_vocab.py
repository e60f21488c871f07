"""The vocabulary is defined once, in cmr_atlas.core.vocab."""

import re
from pathlib import Path

from cmr_atlas.core import vocab

PKG = Path(__file__).resolve().parents[2] / "cmr_atlas"

# a literal definition of a vocabulary name (derived values, e.g. tuple(...) or register(...), are fine)
LITERAL = re.compile(r"^(VIEWS|LAX_VIEWS|PHASES|SURFACES|LANDMARKS|LABELS|MYO|CAVITY|RV)\s*(:[^=]*)?=\s*[\(\{\[\"'0-9]",
                     re.MULTILINE)


def test_vocabulary_is_defined_only_in_vocab():
    found = {str(p.relative_to(PKG)): LITERAL.findall(p.read_text()) for p in PKG.rglob("*.py")}
    found = {k: v for k, v in found.items() if v}
    assert set(found) == {"core/vocab.py"}, found


def test_labels_and_landmarks():
    assert sorted(vocab.LABELS.values()) == [0, 1, 2, 3]
    assert (vocab.BACKGROUND, vocab.MYO, vocab.CAVITY, vocab.RV) == (0, 1, 2, 3)
    assert set(vocab.LANDMARKS) == set(vocab.VIEWS)
    assert set(vocab.LAX_VIEWS) < set(vocab.VIEWS)
    assert all(len(names) == 3 for names in vocab.LANDMARKS.values())


def test_one_of():
    assert vocab.one_of(vocab.VIEWS) == "sax, lax_2ch, lax_4ch or lax_3ch"
    assert vocab.one_of(vocab.PHASES) == "ED or ES"
    assert vocab.one_of(("x",)) == "x"
