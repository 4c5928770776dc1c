"""Utility control (issue 8): a simulated citizen assembly, its targets, LoRA fine-tuning, evaluation.

    result = build_assembly(StoredModel(load_model("smollm2")), size=6, outcomes="quick")
    result.write("assembly/")
    tuned = finetune("smollm2", "assembly/", objective="sft", out="adapter/")
    control = evaluate("smollm2", tuned.spec, "assembly/")
"""

from valuelab.control.assembly import AssemblyResult, build_assembly, from_votes, load_population
from valuelab.control.evaluate import ControlResult, evaluate, figure
from valuelab.control.finetune import OBJECTIVES, FinetuneResult, finetune
from valuelab.control.targets import Targets, load_targets

__all__ = ["OBJECTIVES", "AssemblyResult", "ControlResult", "FinetuneResult", "Targets", "build_assembly",
           "evaluate", "figure", "finetune", "from_votes", "load_population", "load_targets"]
