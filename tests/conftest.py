"""Shared test settings: CPU only, quiet TensorFlow, fixed seeds."""

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one test process per core, at most 4.

    Most of a test's time is TensorFlow building graphs in Python, one core
    per process; more processes than cores, or than 4 (each holds
    TensorFlow and the models of its tests, and starts training
    subprocesses), only compete for cores and memory.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
