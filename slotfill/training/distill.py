"""Knowledge distillation (the config's `distill` section, `slotfill distill`): a student
tagger learns from the gold labels and from teachers, any trained runs (a transformer,
an ensemble, several runs), at once.

The teachers read every training utterance once, before training: each word's tag
distribution (a CRF's marginals, else the softmax of the tag scores) and the intent
distribution, at the distillation temperature, averaged over the teachers, in the
student's tag and intent order. Unlabelled utterances (distill.unlabeled) are labelled
by the teachers' best answer (the tags of the averaged distributions, as spans, and the
most probable intent) and join the training data, so that everything downstream
(vocabularies, substitution, batching, resume) treats them as training data. The loss
is alpha times the student's own loss plus (1 - alpha) times temperature squared times
the cross-entropy with the teachers' distributions (Hinton et al. 2015); for a CRF
student the soft targets enter through the CRF's likelihood of soft labels
(CRFHead.soft_loss), so its transitions learn from them too. An utterance that slot
substitution rewrote this epoch has no teacher tags and learns from its labels alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from slotfill.config import Config, teachers
from slotfill.data.batching import Batch, EncodedSplit, encode_split, make_batch, sorted_batches
from slotfill.data.bio import extract_spans, spans_to_tags
from slotfill.data.corpus import Corpus, Example
from slotfill.data.tokenize import tokenize
from slotfill.data.vocab import Vocabs
from slotfill.errors import ConfigError, DataError
from slotfill.models.checkpoint import Checkpoint, load_checkpoint
from slotfill.models.posteriors import distributions


@dataclass
class Teacher:
    name: str
    checkpoint: Checkpoint
    model: nn.Module  # a Tagger or an Ensemble, in eval mode


def load_teachers(cfg: Config) -> list[Teacher]:
    from slotfill.training.rundir import resolve_model

    loaded = []
    for name in teachers(cfg.distill):
        ckpt = load_checkpoint(resolve_model(name))
        loaded.append(Teacher(name, ckpt, ckpt.build_model("cpu")))
    return loaded


def check_teachers(found: Sequence[Teacher], vocabs: Vocabs, wants_intents: bool) -> None:
    """Each teacher must know the student's tags and intents exactly (as sets)."""
    problems = []
    for teacher in found:
        theirs = teacher.checkpoint.vocabs
        problems += _set_difference(teacher.name, "tags", theirs.tags.itos, vocabs.tags.itos)
        if wants_intents and theirs.intents is not None:
            problems += _set_difference(teacher.name, "intents", theirs.intents.itos,
                                        vocabs.intents.itos)
    if wants_intents and not any(_predicts_intents(t.model) for t in found):
        problems.append("the student predicts intents (model.intent), but no teacher does")
    if problems:
        raise ConfigError("distill.teachers: these teachers cannot teach this student",
                          "\n".join(problems) + "\na teacher must be trained on the same "
                          "tag set and intents as the student's training data")


def _set_difference(name: str, kind: str, theirs: Sequence[str],
                    mine: Sequence[str]) -> list[str]:
    missing, extra = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
    if not missing and not extra:
        return []
    shown = [f"lacks {', '.join(missing[:6])}" if missing else "",
             f"has {', '.join(extra[:6])} that the student's data lacks" if extra else ""]
    return [f"{name}: its {kind} differ ({'; '.join(s for s in shown if s)})"]


def _predicts_intents(model: nn.Module) -> bool:
    return getattr(model, "intent_head", None) is not None


def _multi(model: nn.Module) -> bool:
    return _predicts_intents(model) and model.intent_head.multi


# ---------------------------------------------------------------- the teachers' answers

@dataclass
class Targets:
    """The teachers' distributions for a list of utterances, in the student's order."""

    tags: list[Tensor]  # per utterance (T_i, K)
    intents: list[Tensor] | None  # per utterance (I,), or None


@torch.no_grad()
def teach(found: Sequence[Teacher], examples: Sequence[Example], vocabs: Vocabs,
          temperature: float, intent_multi: bool | None, batch_size: int = 128) -> Targets:
    """The teachers' averaged distributions for `examples` (tags, and intents where the
    student has `intent_multi` not None: over labels, or over atoms when True)."""
    tag_sum = [torch.zeros(len(e.tokens), len(vocabs.tags)) for e in examples]
    intent_sum = intent_count = None
    if intent_multi is not None:
        size = (len(_atoms(vocabs)) if intent_multi else len(vocabs.intents))
        intent_sum, intent_count = [torch.zeros(size) for _ in examples], 0
    for teacher in found:
        theirs = teacher.checkpoint.vocabs
        tag_order = torch.tensor([theirs.tags.index(t) for t in vocabs.tags.itos])
        split = encode_split(examples, theirs)
        has_intents = intent_multi is not None and _predicts_intents(teacher.model)
        if has_intents:
            if _multi(teacher.model) != intent_multi:
                raise ConfigError(f"distill.teachers: {teacher.name} has model.multi_intent "
                                  f"{not intent_multi}, the student {intent_multi}",
                                  "their intent distributions are over labels and over "
                                  "atomic intents; give both the same model.multi_intent")
            head = teacher.model.intent_head
            names = head.sets.atoms if intent_multi else head.labels
            mine = _atoms(vocabs) if intent_multi else vocabs.intents.itos
            intent_order = torch.tensor([list(names).index(n) for n in mine])
            intent_count += 1
        for index in sorted_batches(split.lengths, batch_size):
            batch = make_batch(split, index)
            tags, intents = distributions(teacher.model, batch, temperature)
            for row, i in enumerate(index.tolist()):
                n = len(examples[i].tokens)
                tag_sum[i] += tags[row, :n][:, tag_order]
                if has_intents:
                    intent_sum[i] += intents[row][intent_order]
    tag_lists = [t / len(found) for t in tag_sum]
    intent_lists = ([t / intent_count for t in intent_sum]
                    if intent_sum is not None else None)
    return Targets(tag_lists, intent_lists)


def _atoms(vocabs: Vocabs) -> list[str]:
    from slotfill.models.intent_sets import IntentSets
    return list(IntentSets(vocabs.intents.itos).atoms)


def pseudo_labels(examples: Sequence[Example], targets: Targets, vocabs: Vocabs,
                  intent_names) -> list[Example]:
    """`examples` labelled with the teachers' best answer: each word's most probable tag,
    read as spans and written again as well-formed tags; the most probable intent."""
    labelled = []
    for i, example in enumerate(examples):
        best = [vocabs.tags.itos[k] for k in targets.tags[i].argmax(1).tolist()]
        tags = tuple(spans_to_tags(extract_spans(best), len(best)))
        intent = intent_names(targets.intents[i]) if targets.intents is not None else None
        labelled.append(Example(example.tokens, tags, intent, example.source))
    return labelled


def read_unlabeled(path: str, tokenizer: str) -> list[Example]:
    """The utterances of a text file, one a line (blank lines skipped), tokenised as
    predict tokenises."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"distill.unlabeled: cannot read {file}", str(exc)) from None
    examples = []
    for number, line in enumerate(lines, start=1):
        tokens = tuple(t.norm for t in tokenize(line, mode=tokenizer))
        if tokens:
            examples.append(Example(tokens, ("O",) * len(tokens), None,
                                    f"{file}:{number}"))
    if not examples:
        raise DataError(f"distill.unlabeled: {file} holds no utterance",
                        "give a text file with one utterance a line")
    return examples


def with_teachers(cfg: Config, corpus: Corpus, vocabs: Vocabs,
                  build_vocabs: Callable[[list[Example]], Vocabs]
                  ) -> tuple[Vocabs, SoftTargets, dict]:
    """Load and check the teachers, add the unlabelled utterances they label to the
    corpus's training split, and compute their targets for the whole split. Returns the
    vocabularies (built again when utterances were added), the targets and a summary."""
    kd, m = cfg.distill, cfg.model
    found = load_teachers(cfg)
    check_teachers(found, vocabs, m.intent)
    intent_multi = m.multi_intent if m.intent else None
    gold = list(corpus["train"])
    targets = teach(found, gold, vocabs, kd.temperature, intent_multi)
    summary = {"teachers": [t.name for t in found], "temperature": kd.temperature,
               "alpha": kd.alpha}
    if kd.unlabeled is not None:
        unlabeled = read_unlabeled(kd.unlabeled, cfg.data.tokenizer)
        extra = teach(found, unlabeled, vocabs, kd.temperature, intent_multi)
        names = _intent_namer(vocabs, intent_multi, m.intent_threshold)
        corpus.splits["train"] = gold + pseudo_labels(unlabeled, extra, vocabs, names)
        rebuilt = build_vocabs(corpus["train"])
        targets = reorder(Targets(targets.tags + extra.tags,
                                  targets.intents + extra.intents
                                  if targets.intents is not None else None),
                          vocabs, rebuilt, intent_multi)
        vocabs = rebuilt
        summary["unlabeled"] = {"file": kd.unlabeled, "utterances": len(unlabeled)}
    return vocabs, SoftTargets(corpus["train"], targets), summary


def _intent_namer(vocabs: Vocabs, multi: bool | None, threshold: float):
    """The label of an intent distribution: the most probable label, or the atoms
    above `threshold` (at least the most probable one)."""
    if multi is None:
        return None
    if not multi:
        return lambda p: vocabs.intents.itos[int(p.argmax())]
    from slotfill.models.intent_sets import IntentSets
    sets = IntentSets(vocabs.intents.itos)

    def name(p: Tensor) -> str:
        chosen = p > threshold
        chosen[p.argmax()] = True  # never empty
        return sets.name(i for i, on in enumerate(chosen.tolist()) if on)
    return name


def reorder(targets: Targets, old: Vocabs, new: Vocabs, multi: bool | None) -> Targets:
    """Targets in `old`'s tag and intent order, in `new`'s (the same entries)."""
    tag_order = torch.tensor([old.tags.index(t) for t in new.tags.itos])
    tags = [t[:, tag_order] for t in targets.tags]
    if targets.intents is None:
        return Targets(tags, None)
    before, after = ((_atoms(old), _atoms(new)) if multi
                     else (old.intents.itos, new.intents.itos))
    intent_order = torch.tensor([list(before).index(n) for n in after])
    return Targets(tags, [p[intent_order] for p in targets.intents])


# ---------------------------------------------------------------- training with them

class SoftTargets:
    """The teachers' distributions for the training examples, attached to each epoch's
    encoded split; an example rewritten by substitution gets weight 0 for its tags."""

    def __init__(self, examples: Sequence[Example], targets: Targets) -> None:
        self.tokens = [e.tokens for e in examples]
        self.targets = targets

    def attach(self, split: EncodedSplit, drawn: Sequence[Example]) -> EncodedSplit:
        N, T = split.words.shape
        K = self.targets.tags[0].size(1) if self.targets.tags else 0
        soft = torch.zeros(N, T, K, dtype=torch.float16)  # half: ATIS is 50 MB so
        weight = torch.zeros(N)
        for i, example in enumerate(drawn):
            if example.tokens == self.tokens[i]:
                soft[i, :len(example.tokens)] = self.targets.tags[i]
                weight[i] = 1.0
        device = split.words.device
        split.soft_tags, split.soft_weight = soft.to(device), weight.to(device)
        if self.targets.intents is not None:
            split.soft_intents = torch.stack(self.targets.intents).to(device)
        return split


class DistillationLoss(nn.Module):
    """alpha * the tagger's own loss + (1 - alpha) * T^2 * the soft-target losses."""

    def __init__(self, tagger: nn.Module, temperature: float, alpha: float) -> None:
        super().__init__()
        self.tagger, self.temperature, self.alpha = tagger, temperature, alpha

    def forward(self, batch: Batch) -> Tensor:
        tagger, t = self.tagger, self.temperature
        gold, (states, intent) = tagger.loss_and_read(batch)
        scores = tagger.head(states, batch.mask)
        soft = tagger.head.soft_loss(scores, batch.soft_tags, batch.mask,
                                     batch.soft_weight, t)
        if intent is not None and batch.soft_intents is not None:
            every = torch.ones_like(batch.soft_weight)  # substitution keeps the intent
            soft = soft + tagger.intent_head.soft_loss(intent, batch.soft_intents,
                                                       batch.mask, every, t)
        return self.alpha * gold + (1 - self.alpha) * t * t * soft
