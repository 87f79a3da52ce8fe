"""Data-parallel learning on ``torch.distributed``: :class:`DataParallelAM` and the training job.

``torchrun --standalone --nproc_per_node=N -m stream_am.distributed ...`` runs the job
(:mod:`stream_am.distributed.job`); see ``docs/distributed.md``.
"""

from stream_am.distributed.data_parallel import DataParallelAM, refusal, step_payload
from stream_am.distributed.group import GroupFailure, init_process_group

__all__ = ["DataParallelAM", "GroupFailure", "init_process_group", "refusal", "step_payload"]
