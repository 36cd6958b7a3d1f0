"""Test sets of cities a corpus never had: its test split with every city span replaced.

    python benchmarks/unseen_cities.py --data ../shared/datasets/atis --output DIR
    python benchmarks/unseen_cities.py --data ... --output DIR --model RUN_DIR...
    python benchmarks/unseen_cities.py --data ... --output DIR --split valid  # for tuning

How a set is made (deterministic; nothing of the corpus is stored in this repository):
every utterance of the corpus's test split that has a slot of type `city_name`
(`fromloc.city_name`, `toloc.city_name`, `stoploc.city_name`, `city_name`, ...) is kept,
and each such span is replaced by a city drawn at random (seed 13, per span) from a pool
of cities that the corpus never mentions: no train, valid or test utterance contains the
city's last word. The tags are rewritten to match (`B-x I-x ...` over the new words);
everything else stays. Two pools, two sets, in the ATIS directory format (test split
only) under --output:
- `listed`: world cities of slotfill's shipped `city_name` gazetteer;
- `unlisted`: the towns in UNLISTED below, none of which is in any shipped list, so a
  model can only tell them from their context and spelling.
Scored: slot F1 over the whole set, and city recall: the share of replaced city spans
tagged exactly (same slot, start and end).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 13
UNLISTED = (  # towns in no shipped gazetteer (checked when a set is made)
    "kiruna", "lulea", "umea", "vaasa", "kuopio", "joensuu", "narvik", "alesund",
    "kristiansand", "esbjerg", "aalborg", "groningen", "maastricht", "leuven", "namur",
    "limoges", "poitiers", "biarritz", "perpignan", "girona", "santander", "oviedo", "vigo",
    "coimbra", "braga", "salamanca", "almeria", "murcia", "trieste", "bergamo", "brindisi",
    "cagliari", "ancona", "pescara", "perugia", "klagenfurt", "olomouc", "pecs", "szeged",
    "timbuktu", "mwanza", "kisumu", "tamale", "bobo dioulasso", "nampula", "tulear",
    "iquitos", "trujillo", "cochabamba", "salta", "neuquen", "temuco", "arica",
    "uberlandia", "londrina", "chiclayo", "pasto", "ibague", "tarija", "matsuyama",
    "kanazawa", "toyama", "akita", "aomori", "wakkanai", "chuncheon", "mokpo", "datong",
    "yichang", "kashgar", "dunhuang", "jaffna", "madurai", "jabalpur", "dibrugarh",
    "sittwe", "battambang", "pakse", "vinh", "iloilo", "zamboanga", "ambon",
    "jayapura", "kupang", "broome", "mildura", "wagga wagga", "invercargill", "gisborne",
)


def city_spans(tags):
    from slotfill.data.bio import extract_spans
    return [(k, s, e) for k, s, e in extract_spans(tags) if k.rpartition(".")[2] == "city_name"]


def pools(corpus) -> dict[str, list[tuple[str, ...]]]:
    """The two pools of cities the corpus never mentions (by their last word)."""
    from slotfill.data.gazetteer import read_entries
    from slotfill.resources import bundled_gazetteers

    known = {w for split in corpus.splits.values() for e in split for w in e.tokens}
    listed_everywhere = {e for path in bundled_gazetteers().values()
                         for e in read_entries(path)}
    cities = read_entries(bundled_gazetteers()["city_name"])
    unlisted = [tuple(c.split()) for c in UNLISTED]
    overlap = [c for c in unlisted if c in listed_everywhere]
    if overlap:
        raise SystemExit(f"UNLISTED towns that a shipped gazetteer lists: {overlap}")
    fresh = lambda pool: sorted(c for c in pool if c[-1] not in known)  # noqa: E731
    return {"listed": fresh(cities), "unlisted": fresh(unlisted)}


def make_sets(data: Path, output: Path, split: str = "test") -> dict[str, Path]:
    """Write the two sets made from `split` under `output` (ATIS format, as its test
    split); returns their directories."""
    from slotfill.data.bio import extract_spans, spans_to_tags
    from slotfill.data.corpus import read_corpus

    corpus = read_corpus(data)
    made = {}
    for name, pool in pools(corpus).items():
        rng = random.Random(SEED)
        lines = {"seq.in": [], "seq.out": [], "label": []}
        for example in corpus[split]:
            spans = city_spans(example.tags)
            if not spans:
                continue
            tokens, new_spans, previous = [], [], 0
            for kind, start, end in extract_spans(example.tags):
                tokens += example.tokens[previous:start]
                value = rng.choice(pool) if (kind, start, end) in spans else \
                    example.tokens[start:end]
                new_spans.append((kind, len(tokens), len(tokens) + len(value)))
                tokens += value
                previous = end
            tokens += example.tokens[previous:]
            lines["seq.in"].append(" ".join(tokens))
            lines["seq.out"].append(" ".join(spans_to_tags(new_spans, len(tokens))))
            lines["label"].append(example.intent or "")
        folder = output / name
        for part in ("train", "valid", "test"):  # train/valid: readers need them; unused
            (folder / part).mkdir(parents=True, exist_ok=True)
            for file, rows in lines.items():
                if file == "label" and not any(rows):
                    continue
                (folder / part / file).write_text("\n".join(rows) + "\n")
        made[name] = folder
    return made


def score(checkpoint: Path, folder: Path) -> dict:
    """Slot F1 (and intent accuracy) on a set, and city recall."""
    from slotfill.analysis.evaluate import SplitScorer
    from slotfill.data.bio import extract_spans
    from slotfill.data.corpus import read_corpus
    from slotfill.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    examples = read_corpus(folder, splits=("test",))["test"]
    scorer = SplitScorer(examples, ckpt.vocabs)
    model = ckpt.build_model()
    predicted = scorer.predict(model)
    found = total = 0
    for example, tags in zip(examples, predicted.tags):
        spans = set(extract_spans(tags))
        for span in city_spans(example.tags):
            total += 1
            found += span in spans
    scores = scorer.counts(model).scores()
    return {"utterances": len(examples), "f1": scores["f1"],
            "city_recall": found / total if total else 0.0, "cities": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--model", nargs="*", default=[], help="run directories to score")
    parser.add_argument("--split", default="test", choices=("test", "valid"),
                        help="the split to rewrite (valid: for choosing options on dev)")
    args = parser.parse_args()
    made = make_sets(args.data, args.output, args.split)
    for name, folder in made.items():
        print(f"{name}: {folder}")
    for run in args.model:
        from slotfill.training.rundir import resolve_model
        results = {name: score(resolve_model(run), folder) for name, folder in made.items()}
        print(run, json.dumps(results))


if __name__ == "__main__":
    main()
