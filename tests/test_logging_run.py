"""What a run gives its logger: the whole resolved config, validation generations as tables and
confusion matrices as images (the calls WandbLogger answers), through a logger that records them."""

import importlib
from pathlib import Path

from lightning.pytorch.loggers import Logger

from tests.test_train import run


class Recorder(Logger):
    """A logger with WandbLogger's table and image methods, keeping every call."""

    made: list = []

    def __init__(self, **ignored) -> None:
        super().__init__()
        self.hparams, self.tables, self.images, self.metrics = {}, [], [], []
        Recorder.made.append(self)

    name, version = "recorder", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.hparams.update(params if isinstance(params, dict) else vars(params))

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.append((step, metrics))

    def log_table(self, key, columns=None, data=None, step=None) -> None:
        self.tables.append((key, columns, data, step))

    def log_image(self, key, images, step=None) -> None:
        self.images.append((key, images, step))


def test_the_logger_gets_the_config_generations_and_confusion_images(tiny_model_dir, demo_dir, tmp_path):
    # Hydra imports this file as tests.test_logging_run, which pytest may have loaded under another name.
    made = importlib.import_module("tests.test_logging_run").Recorder.made
    made.clear()
    run(tmp_path, tiny_model_dir, demo_dir, "stage=first", "logger._target_=tests.test_logging_run.Recorder",
        "module.val_generate=4", "trainer.limit_val_batches=null", "data.val_max_per_task=4")  # fmt: skip
    (logger,) = made
    assert logger.hparams["data"]["mixture"] == "first" and logger.hparams["seed"] == 42
    assert logger.hparams["trainer"]["max_epochs"] == 1 and "stage" in logger.hparams
    keys = {key for key, *_ in logger.tables}
    assert keys == {"val/msa/generations", "val/mer/generations", "val/fer/generations"}
    key, columns, data, step = next(t for t in logger.tables if t[0] == "val/mer/generations")
    assert columns == ["where", "query", "answer", "gold", "parsed", "correct"] and 1 <= len(data) <= 4
    assert all(isinstance(row[5], bool) for row in data)  # a label task says whether each answer is right
    fer = next(t for t in logger.tables if t[0] == "val/fer/generations")
    assert all(row[5] is None for row in fer[2])
    images = {key: paths for key, paths, _ in logger.images}
    assert (
        set(images) == {"val/msa/confusion", "val/mer/confusion"}
        and Path(images["val/mer/confusion"][0]).is_file()
    )
