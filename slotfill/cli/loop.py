"""`slotfill select`: which utterances of an unlabelled file a person should label next,
with the model's pre-annotations (slotfill/loop/)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import ModelOption, UsageError, app, err, friendly, out, pick_model


class Strategy(str, Enum):
    mnlp = "mnlp"
    entropy = "entropy"
    margin = "margin"
    bald = "bald"
    random = "random"


class TaskFormat(str, Enum):
    labelstudio = "labelstudio"
    doccano = "doccano"


@app.command()
@friendly
def select(
    file: Annotated[Path, typer.Argument(help="unlabelled utterances, one a line")],
    model: ModelOption = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1,
                                     help="how many utterances to choose")] = 100,
    strategy: Annotated[Strategy, typer.Option(
        "--strategy", help="mnlp: least confidence per word; entropy: of each word's tag "
                           "distribution; margin: the closest call; bald: MC-dropout "
                           "disagreement; random: the baseline")] = Strategy.mnlp,
    diverse: Annotated[bool, typer.Option(
        "--diverse", help="do not choose near-duplicates of an utterance already chosen")]
        = False,
    max_similarity: Annotated[float, typer.Option(
        "--max-similarity", min=0.0, max=1.0,
        help="with --diverse: the word overlap (Jaccard) that makes a near-duplicate")]
        = 0.8,
    samples: Annotated[int, typer.Option(
        "--samples", min=2, help="with bald: dropout samples per utterance")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="for random and bald")] = 1,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="the chosen utterances with the model's pre-annotations")]
        = Path("tasks.json"),
    fmt: Annotated[TaskFormat, typer.Option(
        "--format", help="labelstudio: a Label Studio import with predictions; doccano: "
                         "JSON Lines")] = TaskFormat.labelstudio,
    ranking: Annotated[Optional[Path], typer.Option(
        "--ranking", help="also write every utterance's rank, line and score (TSV)")]
        = None,
    label_config: Annotated[Optional[Path], typer.Option(
        "--label-config", help="the Label Studio project's label config (XML), whose "
                               "names the predictions use; it must fit the model")] = None,
    write_label_config: Annotated[Optional[Path], typer.Option(
        "--write-label-config", help="write a Label Studio label config for this model "
                                     "(its slot types and intents)")] = None,
) -> None:
    """Rank unlabelled utterances for annotation, most uncertain first, and write the top
    ones with the model's slots (and intent) as pre-annotations a person corrects."""
    from slotfill.loop import select as selection
    from slotfill.loop.tasks import LabelConfig, model_version
    from slotfill.serving.predict import Predictor
    from slotfill.serving.serve import labels

    if label_config is not None and fmt is not TaskFormat.labelstudio:
        raise UsageError("--label-config applies to --format labelstudio", "remove it")
    checkpoint = pick_model(model)
    predictor = Predictor(checkpoint)
    known = labels(predictor)
    config = LabelConfig()
    if label_config is not None:
        try:
            xml = label_config.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot read {label_config}", str(exc)) from None
        config = LabelConfig.parse(xml)
        config.check(known["slots"], known["intents"])
    pool = selection.read_pool(file)
    ranked = selection.rank(predictor, pool, strategy.value, samples, seed)
    if diverse:
        ranked = selection.spread(ranked, top, max_similarity, lambda text: {
            t.norm for t in predictor.tokenize(text)})
    chosen = ranked[:top]
    selection.write_tasks(output, predictor, chosen, fmt.value, config,
                          model_version(checkpoint))
    if ranking is not None:
        selection.write_ranking(ranking, ranked, strategy.value)
    if write_label_config is not None:
        selection.write_label_config(write_label_config, known["slots"], known["intents"])
    err.print(f"chose {len(chosen)} of {len(pool)} utterances by {strategy.value}"
              + (" (near-duplicates spread out)" if diverse else ""), markup=False)
    for path in (output, ranking, write_label_config):
        if path is not None:
            out.print(str(path), markup=False)
