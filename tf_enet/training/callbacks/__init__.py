"""The callbacks of a training run, one per module."""

from tf_enet.training.callbacks.backup import Backup
from tf_enet.training.callbacks.best_model_checkpoint import BestModelCheckpoint
from tf_enet.training.callbacks.class_scores import ClassScores
from tf_enet.training.callbacks.epoch_line import EpochLine
from tf_enet.training.callbacks.history_logger import HistoryLogger
from tf_enet.training.callbacks.loss_guard import LossGuard
from tf_enet.training.callbacks.prediction_images import PredictionImages
from tf_enet.training.callbacks.restore_only import RestoreOnly
from tf_enet.training.callbacks.sync_moving_statistics import SyncMovingStatistics

__all__ = [
    "Backup",
    "BestModelCheckpoint",
    "ClassScores",
    "EpochLine",
    "HistoryLogger",
    "LossGuard",
    "PredictionImages",
    "RestoreOnly",
    "SyncMovingStatistics",
]
