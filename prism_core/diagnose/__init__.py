"""Diagnose: rank (stage, resource) suspects between a normal and an abnormal window."""

from prism_core.diagnose.evidence import Evidence, evidence_of, load_evidence
from prism_core.diagnose.rank import Diagnosis, Suspect, diagnose
from prism_core.diagnose.window import WindowDiagnoser

__all__ = ["Diagnosis", "Evidence", "Suspect", "WindowDiagnoser", "diagnose", "evidence_of", "load_evidence"]
