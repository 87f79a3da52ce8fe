"""``python -m stream_am.distributed`` (under ``torchrun``) runs the training job."""

from stream_am.distributed.job import main

if __name__ == "__main__":
    raise SystemExit(main())
