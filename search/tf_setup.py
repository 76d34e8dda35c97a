"""TensorFlow process settings that must be applied before TensorFlow runs its first op."""

from __future__ import annotations

from search.errors import UsageError

__all__ = ["configure_gpu_memory", "configure_threads"]


def configure_threads(threads: int) -> None:
    """Set TensorFlow's intra- and inter-op thread pools to ``threads`` (0 = TF's default).

    Why: small dense models train faster with one thread per process (measured on this
    project's 2-core machines: Boston's book model, 80 epochs, 18.2 s → 11.8 s), and parallel
    trial processes should not fight over cores. Must run before TensorFlow initialises.
    """
    if threads < 0:
        raise UsageError(f"--threads must be 0 (TensorFlow's default) or more; got {threads}")
    if threads == 0:
        return
    import tensorflow as tf

    if (tf.config.threading.get_intra_op_parallelism_threads() == threads
            and tf.config.threading.get_inter_op_parallelism_threads() == threads):
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TF already initialised in this process
        raise UsageError(
            f"--threads {threads} must be set before TensorFlow starts; "
            "set it before building any model in this process"
        ) from exc


def configure_gpu_memory() -> list[str]:
    """Let TensorFlow take GPU memory as it needs it, not all of it at start.

    Why: several trials share one GPU (``--jobs``, Ray's ``--gpus-per-trial 0.5``); by
    default the first process to start claims nearly all of the GPU's memory and the others
    fail out of memory. Must run before TensorFlow touches the GPU; a no-op without GPUs.
    Only the TensorFlow backend needs it (and is what this project trains with).

    Returns:
        The names of the GPUs set to grow (empty on machines without one).
    """
    import tensorflow as tf

    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            done.append(gpu.name)
        except RuntimeError:  # already initialised in this process: leave it as it is
            continue
    return done
