"""Batch stylization of many photos, resumable: a manifest beside the outputs, atomic writes.

The work itself (:mod:`painterly.batch.workers`) is engine-free: it reads photos, stylizes them and
writes each result atomically, returning one record per photo. An engine runs it: ``local`` (this
process) or ``ray`` (Ray Data's actor pool, or one Ray task per photo for image optimization;
:mod:`painterly.batch.ray_engine`, the only module of the package that imports ray). The driver
(:mod:`painterly.batch.runner`) plans what is left to do from the manifest, writes the manifest
(only the driver writes it), shows progress and sums up.
"""

from painterly.batch.manifest import Manifest, Record
from painterly.batch.runner import Job, Summary, plan_jobs, run_jobs

__all__ = ["Job", "Manifest", "Record", "Summary", "plan_jobs", "run_jobs"]
