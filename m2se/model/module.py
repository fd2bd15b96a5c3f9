"""M2SEModule: a vision-language backbone with LoRA, trained on answer tokens of single-task batches."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from m2se.data.dataset import prompts_of
from m2se.data.processor import M2SEProcessor
from m2se.evaluation import TaskResult, result_of
from m2se.files import staged_dir
from m2se.loggers import log_confusion, log_generations
from m2se.model.adapters import Adapter, check_stackable, config_of, merge, read_adapters, write_adapter
from m2se.model.answer_lines import answer_lines
from m2se.model.audio import extra_tokens_for
from m2se.model.backbone import Backbone, LoadSettings, family_of
from m2se.model.checkpoints import (
    CheckpointError,
    check_fit,
    check_resumable,
    plain_data,
    rng_state,
    set_rng_state,
    upgrade_loop_state,
)
from m2se.model.guard import NonFiniteGuard, check_weights
from m2se.model.lora import LoraSettings, add_lora
from m2se.model.optim import OptimizerSettings, adamw_warmup_cosine
from m2se.tasks import TASKS, TaskMetrics
from m2se.tasks.prediction import Prediction


def _settings(cls, value):
    return value if isinstance(value, cls) else cls(**(value or {}))


class M2SEModule(L.LightningModule):
    """``backbone`` (``model.backbone``) loaded frozen, LoRA trained on its ``parts``; ``processor`` (built
    from ``model.processor``, the same object the DataModule encodes with) gives the tokenizer and what
    the model hears. ``init_from`` (a checkpoint or adapter folder of an earlier stage)
    is merged into the base first and a fresh LoRA starts on top, as EmoVerse's stage two does.

    Checkpoints hold only what trains, plus the adapters merged so far, so they rebuild the model
    on the same base; ``save_adapter`` writes a PEFT folder that loads on the original base.
    Non-finite training is caught (``m2se.model.guard``): a step with NaN/inf loss or gradients is
    skipped and logged as ``train/skipped_steps``, ``max_nonfinite_steps`` of them in a row stop the
    run, and non-finite weights are never written to a checkpoint or adapter folder.

    Validation also generates answers for the first ``val_generate`` samples of each task and logs
    the task's metrics as ``val/<task>/<metric>``; testing generates for every sample and keeps the
    predictions in ``test_results`` (task → ``TaskResult``).

    The processor's ``audio`` (``model.audio``) adds a speech encoder and feature projectors whose
    tokens go at the prompt's placeholders (``m2se.model.audio``); the projectors train beside the LoRA,
    and ``init_from``'s trained audio weights (if any) are loaded into them. A processor without the
    audio ``init_from`` was trained with is refused (ValueError): its prompts would lack the placeholders.
    """

    def __init__(
        self,
        backbone: Backbone,
        processor: M2SEProcessor,
        lora: LoraSettings | Mapping | None = None,
        load: LoadSettings | Mapping | None = None,
        optimizer: OptimizerSettings | Mapping | None = None,
        init_from: str | None = None,
        stage: int = 1,
        val_generate: int = 0,
        protocol: str = "semeval",
        parse: str | None = None,
        max_nonfinite_steps: int = 5,
    ) -> None:
        super().__init__()
        hyperparameters = {k: v for k, v in locals().items() if k not in ("self", "__class__", "processor")}
        self.save_hyperparameters({**plain_data(hyperparameters), "audio": processor.audio.to_dict()})
        self.strict_loading = False  # checkpoints leave the frozen base out
        self.backbone, self.processor, self.stage = backbone, processor, stage
        self.model_path = str(backbone.path)
        self.recorded = {"backbone": family_of(backbone), "tile_size": processor.tile_size}  # beside adapters
        self.lora = _settings(LoraSettings, lora)
        self.load_settings = _settings(LoadSettings, load)
        self.optim = _settings(OptimizerSettings, optimizer)
        base = backbone.load(self.load_settings)
        self.merged: list[Adapter] = read_adapters(init_from) if init_from else []
        self.model = add_lora(merge(base, self.merged), self.lora, backbone.parts)
        # Refused now, not after training: the adapter folder must stack every stage into one LoRA.
        check_stackable([a.lora_config() for a in self.merged] + [self.model.peft_config["default"]])
        self.model.train()  # from_pretrained leaves the base in eval mode
        hidden, dtype = self.model.get_input_embeddings().embedding_dim, self.load_settings.torch_dtype()
        self.extra_tokens = extra_tokens_for(processor.audio, init_from, hidden, dtype)
        # Set by the curriculum: the optimizer steps (start, end) the current stage's schedule spans.
        self.schedule_window: tuple[int, int] | None = None
        self.flops_per_batch = None  # read by ThroughputMonitor
        self.schedule_steps: int | None = None  # the LR schedule's length, kept by resume
        self.guard = NonFiniteGuard(max_nonfinite_steps)
        self._rng_to_restore: dict | None = None
        self.tokenizer = processor.tokenizer
        self.val_generate = val_generate
        self.parse = parse
        self.val_metrics = nn.ModuleDict({t: TaskMetrics(t, protocol, parse) for t in TASKS})
        self.test_metrics = nn.ModuleDict({t: TaskMetrics(t, protocol, parse) for t in TASKS})
        self._val_generated: dict[str, int] = {}
        self._val_rows: dict[str, list[Prediction]] = {}  # this validation's generations, for loggers' tables
        self._test_rows: dict[str, list[tuple[tuple[str, int], Prediction]]] = {}  # (source, index), row
        self.test_results: dict[str, TaskResult] = {}
        self.predict_scores = True  # predict.py's scores=: label probabilities beside each answer

    def placed(self, batch: dict):
        """Context in which the model's input embedding carries the batch's audio and feature tokens."""
        if self.extra_tokens is None:
            if batch.get("audio_mask") is not None or batch.get("feature_masks"):
                raise ValueError(
                    "the batch has audio or feature placeholders but the model has no model.audio"
                )
            return contextlib.nullcontext()
        return self.extra_tokens.placed(self.model.get_input_embeddings(), batch)

    # -- steps ------------------------------------------------------------------------------------
    def forward(self, batch: dict) -> torch.Tensor:
        with self.placed(batch):
            loss = self.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                labels=batch["labels"],
                **self.processor.model_inputs(batch),
            ).loss
        return loss if self.extra_tokens is None else loss + self.extra_tokens.unused()

    def _empty_loss(self) -> torch.Tensor:
        # Every sample of the batch was skipped; a zero loss tied to the weights keeps DDP ranks in step.
        return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if batch["input_ids"] is None:
            return self._empty_loss()
        loss, size = self(batch), len(batch["records"])
        self.guard.observe(loss)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self._log_task_loss(batch["task"], loss)
        self.log("train/stage", float(self.stage), prog_bar=True, batch_size=size)
        return loss

    def _log_task_loss(self, task: str, loss: torch.Tensor) -> None:
        # self.log would re-emit a task's last loss at every later step of the epoch (Lightning keeps
        # on_step values until the epoch ends), painting it on steps that never saw the task.
        if self.trainer.global_step % self.trainer.log_every_n_steps == 0:
            for logger in self.loggers:
                logger.log_metrics({f"train/{task}/loss": loss.item()}, step=self.global_step)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if batch["input_ids"] is None:
            return
        loss, size, task = self(batch), len(batch["records"]), batch["task"]
        self.log(f"val/{task}/loss", loss, batch_size=size, sync_dist=True)
        self.log("val/loss", loss, batch_size=size, sync_dist=True, prog_bar=True)
        done = self._val_generated.get(task, 0)
        if done < self.val_generate:
            answers = self.generate_answers(prompts_of(batch, self.tokenizer.pad_token_id), task)
            records = batch["records"][: self.val_generate - done]
            rows = [Prediction.of_record(r, a) for r, a in zip(records, answers, strict=False)]
            self.val_metrics[task].add(rows)
            self._val_rows.setdefault(task, []).extend(rows)
            self._val_generated[task] = done + len(records)

    def on_validation_epoch_end(self) -> None:
        if not self.val_generate:
            return
        # compute() syncs across ranks: every rank computes the same tasks in the same order, even
        # tasks its own shard never saw.
        datamodule = getattr(self.trainer, "datamodule", None)
        tasks = sorted(datamodule.mixtures[datamodule.mixture]) if datamodule else sorted(self._val_generated)
        for task in tasks:
            with warnings.catch_warnings():  # a task no rank reached computes empty states, on purpose
                warnings.filterwarnings("ignore", message=".*was called before the ``update`` method")
                values = self.val_metrics[task].compute()
            if values["count"]:
                scalars = {
                    f"val/{task}/{k}": float(v) for k, v in values.items() if isinstance(v, int | float)
                }
                self.log_dict(scalars, rank_zero_only=True)  # already reduced across ranks
                if self.trainer.is_global_zero:  # tables and images: rank zero's own samples
                    self._log_examples(task)
            self.val_metrics[task].reset()
        self._val_generated, self._val_rows = {}, {}

    def _log_examples(self, task: str) -> None:
        log_generations(self.loggers, task, self._val_rows.get(task, []), self.global_step, self.parse)
        try:
            labels, matrix = self.val_metrics[task].confusion()
        except ValueError:  # not a label task, or several corpora
            return
        folder = Path(self.trainer.default_root_dir) / "confusion"
        log_confusion(self.loggers, task, labels, matrix.int().tolist(), folder, self.global_step)

    # -- generation -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_answers(self, batch: dict, task: str, **generate_kwargs) -> list[str]:
        """Greedy answers for a left-padded prompt batch, up to the task's ``max_new_tokens``.

        Runs in eval mode (no LoRA dropout) and restores the mode it found; ``generate_kwargs``
        override the generation settings (``max_new_tokens``, ``min_new_tokens``, ...).
        """
        training = self.training
        self.eval()
        settings = dict(
            max_new_tokens=TASKS[task].max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.processor.stop_token_ids,  # the end of turn training taught, and eos
        )
        vision = self.processor.model_inputs(batch)  # none for a text-only batch
        ids, mask = batch["input_ids"], batch["attention_mask"]
        try:
            with self.placed(batch):
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, **vision, **settings | generate_kwargs
                )
        finally:
            self.train(training)
        return self.tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch["input_ids"] is None:
            return
        task = batch["task"]
        answers = self.generate_answers(batch, task)
        rows = [Prediction.of_record(r, a) for r, a in zip(batch["records"], answers, strict=True)]
        self.test_metrics[task].add(rows)
        # Batches come longest prompt first (question_loader): rows go back to record order.
        keyed = [((r.source, r.index), row) for r, row in zip(batch["records"], rows, strict=True)]
        self._test_rows.setdefault(task, []).extend(keyed)

    def on_test_epoch_end(self) -> None:
        # Collective calls below: every rank goes through the same tasks in the same order.
        datamodule = getattr(self.trainer, "datamodule", None)
        tasks = list(datamodule.test_records) if datamodule else sorted(self._test_rows)
        for task in tasks:
            rows = self._test_rows.get(task, [])
            if dist.is_available() and dist.is_initialized():  # every rank scored its own shard
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, rows)
                rows = [row for part in gathered for row in part]
            rows = [row for _, row in sorted(rows, key=lambda keyed: keyed[0])]
            metrics = self.test_metrics[task]
            if rows:
                with warnings.catch_warnings():  # a rank whose shard had none of this task
                    warnings.filterwarnings("ignore", message=".*was called before the ``update`` method")
                    self.test_results[task] = result_of(metrics, rows)
            metrics.reset()
        self._test_rows = {}

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        """predict.py's output lines for the batch (``m2se.model.answer_lines``)."""
        return answer_lines(self, batch, self.predict_scores)

    # -- optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict:
        if self.schedule_window is not None:  # set by the curriculum, per stage
            start, end = self.schedule_window
        else:
            # Planned once and kept in checkpoints: a resumed run keeps the interrupted run's schedule
            # even where the restored data state would estimate another length.
            if self.schedule_steps is None:
                self.schedule_steps = int(self.trainer.estimated_stepping_batches)
            start, end = 0, self.schedule_steps
        return adamw_warmup_cosine(self, self.optim, max(1, int(end - start)))

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.trainer.precision == "16-mixed":
            return  # the grad scaler skips overflowing steps itself, and early ones overflow by design
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not self.guard.step_is_finite(self, self.global_step, params):
            for logger in self.loggers:
                logger.log_metrics({"train/skipped_steps": self.guard.skipped}, step=self.global_step)

    # -- stages and checkpoints -------------------------------------------------------------------
    def start_new_lora(self) -> None:
        """Merge the current LoRA into the base and start a fresh one (the next stage)."""
        self.merged.append(Adapter.of(self.model))
        base = self.model.merge_and_unload()
        base.requires_grad_(False)
        self.model = add_lora(base, self.lora, self.backbone.parts)
        self.stage += 1

    def save_adapter(self, out_dir: str | Path) -> Path:
        """A PEFT folder with every stage's LoRA, for ``PeftModel.from_pretrained(original_base, out_dir)``,
        plus ``audio.safetensors`` and ``audio_config.json`` when the model has audio or feature tokens.

        Written beside ``out_dir`` and renamed into place as a whole: an earlier folder there is replaced
        entirely or, if writing fails, kept as it was. Raises ``NonFiniteError`` on NaN/inf weights.
        """
        check_weights(self, self.global_step, f"the adapter folder {out_dir}")
        adapters = [*self.merged, Adapter.of(self.model)]
        with staged_dir(out_dir) as staged:
            write_adapter(adapters, staged, self.model_path, self.recorded)
            if self.extra_tokens is not None:
                self.extra_tokens.save(staged)
        return Path(out_dir)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        check_weights(self, self.global_step, "a checkpoint")
        trained = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trained}
        checkpoint["m2se"] = {
            "stage": self.stage,
            "base": self.model_path,
            **self.recorded,
            "lora_config": config_of(self.model),  # not Adapter.of: no tensor copies
            "merged": [a.state() for a in self.merged],
            "audio": None if self.extra_tokens is None else self.extra_tokens.settings.to_dict(),
            "schedule_steps": self.schedule_steps,
            "skipped_steps": self.guard.skipped,
            # Dropout draws from these; Lightning does not save them, and a resumed run must continue them.
            "rng": rng_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming after a stage switch: merge the adapters the run had merged, then a fresh LoRA."""
        if "m2se" not in checkpoint:
            raise CheckpointError("not an m2se checkpoint (no 'm2se' entry)")
        saved = checkpoint["m2se"]
        merged = [Adapter(a["config"], a["tensors"], "the resumed checkpoint") for a in saved["merged"]]
        check_resumable(saved, self.merged, config_of(self.model))
        if len(merged) > len(self.merged):
            base = merge(self.model.unload(), merged[len(self.merged) :])
            self.model = add_lora(base, self.lora, self.backbone.parts)
            self.merged = merged
        self.stage = saved["stage"]
        check_fit({n: p for n, p in self.named_parameters() if p.requires_grad}, checkpoint["state_dict"])
        self.schedule_steps = saved.get("schedule_steps")
        self.guard.skipped = saved.get("skipped_steps", 0)
        self._rng_to_restore = saved.get("rng")
        if upgrade_loop_state(checkpoint):
            rank_zero_warn(
                "this checkpoint predates exact resume: the interrupted epoch restarts from its start"
            )

    def on_train_start(self) -> None:
        # Last before the first batch (after set-ups that draw random numbers): the stream continues.
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
