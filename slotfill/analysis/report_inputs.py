"""What the run report shows, gathered (report.py) and laid out (report_html.py): the run
as its directory records it, the scored split, its error analysis and the drawn charts."""

from __future__ import annotations

from dataclasses import dataclass, field

from slotfill.analysis.errors import ErrorAnalysis
from slotfill.analysis.evaluate import EvalResult


@dataclass
class RunRecord:
    """What a run directory tells about the run (empty for a lone checkpoint)."""

    name: str
    config: dict = field(default_factory=dict)  # the resolved config, as a mapping
    history: list[dict] = field(default_factory=list)  # RunDir.read_history()
    summary: dict = field(default_factory=dict)  # RunDir.summary()


@dataclass
class ReportInputs:
    """Everything the page shows."""

    result: EvalResult
    analysis: ErrorAnalysis
    run: RunRecord
    charts: dict[str, str] = field(default_factory=dict)  # name -> <svg> element
