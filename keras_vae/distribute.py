"""Choosing a `tf.distribute` strategy and locating a replica in the global batch."""

import json
import os

import tensorflow as tf

from keras_vae.run_config import STRATEGIES


def choose_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy to train under.

    `"auto"` picks `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a
    cluster, `MirroredStrategy` when several GPUs are visible, and the default
    (single-device) strategy otherwise.

    Args:
        name: one of `"auto"`, `"default"`, `"mirrored"`, `"multi_worker"`.

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy. Expected one of {STRATEGIES}. Received: strategy={name!r}"
        )
    if name == "auto":
        if _tf_config_has_cluster():
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _tf_config_has_cluster():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        return bool(json.loads(raw).get("cluster"))
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}. Received: {raw!r}") from None


def global_batch_position(local_batch_size):
    """Locates this replica's examples in the global batch.

    Inside a replica context of a strategy with several replicas, the sizes of
    all per-replica batches are gathered, so uneven last batches are handled
    exactly. Elsewhere the local batch is the global batch.

    Args:
        local_batch_size: int32 scalar tensor, the size of this replica's batch.

    Returns:
        A tuple `(offset, global_batch_size)` of int32 scalar tensors: the index
        of this replica's first example in the global batch, and the number of
        examples in the global batch.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.constant(0, tf.int32), local_batch_size
    sizes = context.all_gather(tf.reshape(local_batch_size, [1]), axis=0)
    replica_id = tf.cast(context.replica_id_in_sync_group, tf.int32)
    return tf.reduce_sum(sizes[:replica_id]), tf.reduce_sum(sizes)


def worker_role(strategy):
    """Tells whether this process is the chief of its cluster, and its name.

    The chief is the task of type `"chief"` or, in a cluster without one,
    worker 0; a single process is its own chief. Only the chief should write
    outputs; every worker must still run the same collective steps.

    Args:
        strategy: a `tf.distribute.Strategy`.

    Returns:
        A tuple `(is_chief, name)`, the name being e.g. `"worker-1"`.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True, "chief"
    task_type, task_id = resolver.task_type, resolver.task_id
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster
    )
    return is_chief, f"{task_type}-{task_id}"
