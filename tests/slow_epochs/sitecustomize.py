"""Put on PYTHONPATH of a training subprocess with RJCMA_SLOW_EPOCH_S=seconds: every epoch's checkpoint is followed
by that pause, so a resume test can kill the run between two epochs. The library itself has no such hook."""

import os

if os.environ.get("RJCMA_SLOW_EPOCH_S"):
    import time

    import rjcma.train.loop as _loop

    _save_epoch = _loop.save_epoch

    def _slow_save_epoch(run):
        _save_epoch(run)
        time.sleep(float(os.environ["RJCMA_SLOW_EPOCH_S"]))

    _loop.save_epoch = _slow_save_epoch
