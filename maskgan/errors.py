"""The kit's errors: one family under :class:`MaskGANError`.

Every error the kit raises on purpose (bad input, a missing stage, a damaged checkpoint, a locked
run directory, a NaN loss) is a :class:`MaskGANError`. Its message is written for the user: it
names the file, the value and what was expected, and says what to do next. The command line
catches the family once for every command and prints the message without a traceback (exit code
2; ``--debug`` shows the traceback); anything else escaping is a bug of the kit.

The specific errors keep a familiar built-in base where callers may already catch one
(``ConfigError`` is also a ``ValueError``, ``StageMissing`` a ``FileNotFoundError``).
"""
from __future__ import annotations

__all__ = [
    "MaskGANError", "ConfigError", "LabelError", "DataError", "DataMissing", "CheckpointError", "StageMissing",
    "TrainingError", "RunLocked", "WeightsImportError", "PipelineError", "PreparationError",
]


class MaskGANError(Exception):
    """Base class of every error the kit raises on purpose; its message is meant for the user."""


class ConfigError(MaskGANError, ValueError):
    """A configuration value or key is invalid."""


class LabelError(MaskGANError, ValueError):
    """A label map holds values outside the 19 CelebAMask-HQ classes, or has the wrong shape."""


class DataError(MaskGANError, ValueError):
    """A dataset file is missing, unreadable or inconsistent (the message names the file)."""


class DataMissing(DataError, FileNotFoundError):
    """A dataset folder or file that should exist does not (the message says how to make it)."""


class CheckpointError(MaskGANError):
    """A checkpoint is missing, damaged, unsafe, or does not match the run it is loaded into."""


class StageMissing(MaskGANError, FileNotFoundError):
    """A run directory lacks a stage that is needed; the message names the notebook and the command."""


class TrainingError(MaskGANError):
    """Training cannot go on (a NaN loss, a run directory of another config, a bad step count)."""


class RunLocked(TrainingError):
    """Another live process is training the same stage of the same run directory."""


class WeightsImportError(CheckpointError):
    """A foreign weights file (the authors' generator, a face parser) does not fit the kit's network."""


class PipelineError(MaskGANError):
    """A notebook of the pipeline failed or cannot run."""


class PreparationError(MaskGANError):
    """Dataset preparation found problems (the report lists every file)."""
