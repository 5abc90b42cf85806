"""Resumable runs of a system over large JSONL files, locally or on a Ray cluster.

    chorus batch -c systems.yaml -s triage --input tickets.jsonl --output answers.jsonl

``items`` reads and checks the input, ``checkpoint`` owns the output (which is the
checkpoint), ``worker`` answers one item, ``runner`` dispatches items with bounded
concurrency and the run's budget, ``engines`` runs it here or on Ray.
"""

from chorus.batch import items
from chorus.batch.checkpoint import OutputError, Previous, Writer, open_output
from chorus.batch.engines import RayPool, ray_session, run_local, run_ray
from chorus.batch.items import InputError, Scan, scan, stream, to_request
from chorus.batch.progress import Bar
from chorus.batch.runner import Outcome, dispatch
from chorus.batch.worker import Job, Worker

__all__ = [
    "Bar",
    "InputError",
    "Job",
    "Outcome",
    "OutputError",
    "Previous",
    "RayPool",
    "Scan",
    "Worker",
    "Writer",
    "dispatch",
    "items",
    "open_output",
    "ray_session",
    "run_local",
    "run_ray",
    "scan",
    "stream",
    "to_request",
]
