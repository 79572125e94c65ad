"""The training loop: Adam over the trainable layers, MSE (or SMAPE) in scaled space, early stopping
on validation MSE, the best weights kept and reloaded for a final test over every test window.

Built on ``accelerate.Accelerator``: ``python -m timellm_core train`` uses one device, and
``accelerate launch --multi_gpu -m timellm_core train ...`` shards batches over GPUs (bf16 through
``mixed_precision``). Only the main process writes the run folder and emits events.

Differences from the reference, on purpose: schedules do what their names say; the best
checkpoint is kept and reloaded for the final test; metrics cover all test windows (the
reference drops the last incomplete batch); ``seed`` is honoured.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from timellm_core.config import RunConfig
from timellm_core.errors import RunError, TimeLLMError, TrainingError
from timellm_core.safety import redact_secrets
from timellm_core.training import checkpoint as ckpt
from timellm_core.training.evaluation import (
    Cancelled, EvalResult, check_cancel, evaluate_batches, limited_windows, loss_function, target_part,
    unpack_batch)
from timellm_core.training.events import Event, EventSink, make_event
from timellm_core.training.optimizer import make_adam
from timellm_core.training.outcome import EarlyStopping, TrainingProgress, TrainingResult  # noqa: F401
from timellm_core.training.parts import (
    BackboneSource, EpochShuffleSampler, build_model, check_backbone_device, describe_backbone, describe_data,
    freeze_all_but_trainable, make_accelerator, prepare_data_for, resolve_backbone, window_count_of)
from timellm_core.training.results import (
    build_test_metrics, events_up_to_checkpoint, extra_test_metrics, predictions_arrays)
from timellm_core.training.runs import CHECKPOINT_FILE, MODEL_FILE, RunFolder
from timellm_core.training.schedules import LearningRateSchedule


EVALUATION_EVENT_INTERVAL_S = 0.5  # progress events during an evaluation pass, at most this often


class Trainer:
    """Trains one run. ``run()`` returns a TrainingResult or raises TrainingError (after a ``failed`` event).

    ``data``, ``backbone`` and ``model`` may be given (the app reuses a cached backbone; tests pass
    small stand-ins); otherwise they are built from ``config``. ``resume=True`` continues ``run``
    (a RunFolder opened on an existing run) from its last checkpoint.
    """

    def __init__(self, config: RunConfig, *, run: RunFolder | None = None, data: Any = None,
                 backbone: BackboneSource = None, model: torch.nn.Module | None = None,
                 on_event: EventSink | None = None, cancel: threading.Event | None = None, resume: bool = False):
        self.config = config.copy().validate()
        self.run_folder = run
        self.data = data
        self._backbone_source = backbone
        self.backbone: Any = None
        self.model = model
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        self.resume = resume
        self.progress = TrainingProgress()
        self.best_state: dict[str, torch.Tensor] | None = None
        self.accelerator: Any = None

    # --- events ------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    def emit(self, event_type: str, **fields: Any) -> Event:
        event = make_event(event_type, **fields)
        if self.is_main:
            if self.run_folder is not None:
                self.run_folder.append_event(event)
            if self.on_event is not None:
                self.on_event(event)
        return event

    def _set_status(self, status: str, **values: Any) -> None:
        if self.is_main and self.run_folder is not None:
            self.run_folder.update(status=status, **values)

    # --- entry point ---------------------------------------------------------------------------

    def run(self) -> TrainingResult:
        try:
            self._setup()
            self._set_status("running")
            self._train()
            result = self._final_test()
            self._set_status("finished")
            return result
        except (Cancelled, KeyboardInterrupt) as interruption:
            kept = self._stopper_best() if self.best_state is not None else None
            self.emit("cancelled", epoch=self.progress.epoch, global_step=self.progress.global_step,
                      epochs_done=self._epochs_done(), kept_epoch=kept)
            self._set_status("cancelled")
            if isinstance(interruption, KeyboardInterrupt):
                raise
            return TrainingResult("cancelled", self._run_dir(), self._epochs_done(), self._stopper_best())
        except Exception as error:  # every fault ends as a `failed` event with a readable message
            message = redact_secrets(self._failure_message(error))  # it goes to config.json and the UI
            # The disk itself may be the fault: each record is tried on its own (config.json is a
            # rewrite, so it may succeed where appending failed); the exception below carries the message.
            for record in (lambda: self.emit("failed", message=message, where=self.progress.where),
                           lambda: self._set_status("failed", error=message)):
                try:
                    record()
                except TimeLLMError:
                    pass
            if isinstance(error, TimeLLMError):
                raise  # already says what to do, in its own class (RunError, ConfigError, ...)
            raise TrainingError(message) from error
        finally:
            if self.accelerator is not None:
                self.accelerator.free_memory()

    def _run_dir(self) -> str | None:
        return str(self.run_folder.path) if self.run_folder is not None else None

    def _failure_message(self, error: Exception) -> str:
        if isinstance(error, TimeLLMError):
            return str(error)
        text = f"{type(error).__name__}: {error}"
        if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
            text += " (reduce batch_size, seq_len or llm_layers, or use load_in_4bit)"
        return f"Training failed during {self.progress.where}: {text}"

    # --- setup ---------------------------------------------------------------------------------

    def _setup(self) -> None:
        from accelerate.utils import set_seed

        config, training = self.config, self.config.training
        self.progress.where = "setup"
        self.accelerator = make_accelerator(training)
        set_seed(int(training.seed))
        if self.data is None:
            self.progress.where = "loading the data"
            self.data = prepare_data_for(config)
        check_cancel(self.cancel)
        if self.model is None:
            self.progress.where = "loading the backbone"
            self.backbone = resolve_backbone(self._backbone_source, config.backbone, self.accelerator.device,
                                             random_weights=config.model.llm_mode == "random")
            check_backbone_device(self.backbone, self.accelerator.device)
            self.progress.where = "building the model"
            self.model = build_model(config, self.backbone, self.data)
            self.backbone = getattr(self.model, "backbone", self.backbone)  # llm_mode=random: the random twin
        else:
            self.backbone = getattr(self.model, "backbone", None)
        check_cancel(self.cancel)
        trainable = freeze_all_but_trainable(self.model)

        self.progress.where = "preparing the windows"
        seed = int(training.seed)
        if callable(getattr(self.data, "set_seed", None)):  # data that draws its windows (M4) draws them seeded
            self.data.set_seed(seed)
        train_set, self.train_indices = limited_windows(self.data, "train", training.max_train_windows, seed)
        val_set, self.val_indices = limited_windows(self.data, "val", training.max_eval_windows, seed)
        test_set, self.test_indices = limited_windows(self.data, "test", training.max_eval_windows, seed)
        if len(train_set) == 0:
            raise TrainingError("There are no training windows: the train split is shorter than "
                                "seq_len + pred_len. Lower seq_len or pred_len, or use a longer series.")
        if len(test_set) == 0:
            raise TrainingError("There are no test windows: the test split is shorter than seq_len + pred_len.")
        self.sampler = EpochShuffleSampler(len(train_set), seed)
        workers = int(training.num_workers)
        train_loader = DataLoader(train_set, batch_size=int(training.batch_size), sampler=self.sampler,
                                  num_workers=workers, drop_last=False)
        val_loader = DataLoader(val_set, batch_size=int(training.eval_batch_size), shuffle=False,
                                num_workers=workers) if len(val_set) else None
        test_loader = DataLoader(test_set, batch_size=int(training.eval_batch_size), shuffle=False,
                                 num_workers=workers)
        optimizer = make_adam(trainable, lr=float(training.learning_rate))
        prepared = self.accelerator.prepare(self.model, optimizer, train_loader, test_loader,
                                            *([val_loader] if val_loader is not None else []))
        self.wrapped_model, self.optimizer, self.train_loader, self.test_loader = prepared[:4]
        self.val_loader = prepared[4] if val_loader is not None else None
        precision = getattr(self._unwrapped(), "fast_precision", None)
        # float16 (the fast path on GPUs without bf16) needs its gradients scaled; accelerate's own fp16 has one.
        self.loss_scaler = (torch.amp.GradScaler(self.accelerator.device.type)
                            if precision is not None and precision.loss_scaling and training.mixed_precision != "fp16"
                            else None)
        self.steps_per_epoch = len(self.train_loader)

        self.schedule = LearningRateSchedule(self.optimizer.optimizer, training, self.steps_per_epoch)
        self.loss_fn = loss_function(training.loss)
        self.stopper = EarlyStopping(int(training.patience))
        self.start_epoch = 1
        self.progress.total_steps = int(training.train_epochs) * self.steps_per_epoch
        self.windows = {split: window_count_of(self.data, split) for split in ("train", "val", "test")}
        self.windows_used = {"train": len(train_set), "val": len(val_set), "test": len(test_set)}
        # What a progress bar needs to count evaluation passes as work, not only training steps.
        self.plan = {"val_batches": len(self.val_loader) if self.val_loader is not None else 0,
                     "test_batches": len(self.test_loader), "test_each_epoch": bool(training.test_each_epoch),
                     "batch_size": int(training.batch_size), "eval_batch_size": int(training.eval_batch_size)}
        if self.resume:
            self._restore()
        else:
            precision = getattr(self._unwrapped(), "fast_precision", None)
            self._set_status("running", backbone=describe_backbone(self.backbone),
                             trainable_parameters=sum(int(p.numel()) for p in trainable),
                             dataset=describe_data(self.data, self.windows, self.windows_used),
                             fast_precision=precision.as_dict() if precision is not None else None)
            self.emit("started", epochs=int(training.train_epochs), steps_per_epoch=self.steps_per_epoch,
                      total_steps=self.progress.total_steps, first_epoch=1, windows=self.windows,
                      windows_used=self.windows_used, device=str(self.accelerator.device),
                      processes=self.accelerator.num_processes, mixed_precision=training.mixed_precision,
                      backend=getattr(self.accelerator.state, "backend", None),  # gloo, nccl; None for one process
                      **self.plan)

    def _unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.wrapped_model)

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().to("cpu", copy=True)
                for name, tensor in self._unwrapped().trainable_state_dict().items()}

    # --- resume --------------------------------------------------------------------------------

    def _restore(self) -> None:
        if self.run_folder is None:
            raise RunError("resume needs the run folder to continue.")
        folder = self.run_folder.path
        if any(event.get("type") == "finished" for event in self.run_folder.events()):
            raise RunError(f"The run {folder.name} has already finished: there is nothing to resume. "
                           "Start a new run (or evaluate this one).")
        expected = self._unwrapped().trainable_state_dict()
        model_state, optimizer_state, state, rng = ckpt.load_training_state(
            folder / CHECKPOINT_FILE, self.config, expected)
        if int(state.get("steps_per_epoch", self.steps_per_epoch)) != self.steps_per_epoch:
            raise RunError("The run's windows differ from when it was saved (steps per epoch changed): "
                           "the dataset file or settings have changed. Start a new run.")
        self._unwrapped().load_trainable_state_dict(model_state)
        self.optimizer.load_state_dict(optimizer_state)
        self.schedule.load_state_dict(state["schedule"])
        self.stopper = EarlyStopping(**state["early_stopping"])
        if rng is not None:
            torch.set_rng_state(rng)
        if (folder / MODEL_FILE).is_file():
            self.best_state = {k: v.cpu() for k, v in
                               ckpt.load_model_weights(folder / MODEL_FILE, self.config, expected).items()}
        epoch = int(state["epoch"])
        self.start_epoch = epoch + 1
        self.progress.epoch = epoch
        self.progress.global_step = int(state["global_step"])
        if self.is_main:
            self.run_folder.rewrite_events(events_up_to_checkpoint(self.run_folder.events(), epoch))
        self.emit("resumed", from_epoch=epoch, global_step=self.progress.global_step,
                  epochs=int(self.config.training.train_epochs), steps_per_epoch=self.steps_per_epoch,
                  total_steps=self.progress.total_steps, windows=self.windows, windows_used=self.windows_used,
                  **self.plan)

    def _epochs_done(self) -> int:
        return self.progress.epoch if self.progress.step == 0 else self.progress.epoch - 1

    def _stopper_best(self) -> int | None:
        stopper = getattr(self, "stopper", None)
        return stopper.best_epoch if stopper is not None else None

    # --- the loop ------------------------------------------------------------------------------

    def _train(self) -> None:
        epochs = int(self.config.training.train_epochs)
        for epoch in range(self.start_epoch, epochs + 1):
            if self.stopper.stopped:
                break
            self._train_epoch(epoch)

    def _train_epoch(self, epoch: int) -> None:
        progress, accelerator = self.progress, self.accelerator
        progress.epoch, progress.step = epoch, 0
        # accelerate's loader re-applies its own pass counter to the sampler on every pass; give it ours,
        # so the order depends on (seed, epoch) alone and a resumed run sees the batches it would have.
        if callable(getattr(self.train_loader, "set_epoch", None)):
            self.train_loader.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        if callable(getattr(self.data, "set_epoch", None)):
            self.data.set_epoch(epoch)
        self.wrapped_model.train()
        losses: list[float] = []
        lr = self.schedule.lr
        for step, batch in enumerate(self.train_loader, start=1):
            check_cancel(self.cancel)
            progress.step, progress.where = step, f"epoch {epoch}, step {step}"
            started = time.perf_counter()
            x, y, mask = unpack_batch(batch)
            lr = self.schedule.lr
            self.optimizer.zero_grad(set_to_none=True)
            forecast = target_part(self.wrapped_model(x), y).float()
            loss = self.loss_fn(forecast, y.float(), mask)
            value = loss.detach()
            if accelerator.num_processes > 1:  # every process must agree to stop on a NaN
                value = accelerator.reduce(value, reduction="mean")
            value = float(value)
            if not math.isfinite(value):
                raise TrainingError(
                    f"The training loss became {value} at epoch {epoch}, step {step} (global step "
                    f"{progress.global_step + 1}). Lower the learning rate (it was {lr:.3g}) or check the data "
                    "for extreme values; the last good checkpoint is kept.")
            if self.loss_scaler is None:
                accelerator.backward(loss)
                self.optimizer.step()
            else:
                accelerator.backward(self.loss_scaler.scale(loss))
                self.loss_scaler.step(self.optimizer)  # skipped when a gradient overflowed
                self.loss_scaler.update()
            self.schedule.after_batch()
            progress.global_step += 1
            losses.append(value)
            elapsed = max(time.perf_counter() - started, 1e-9)
            self.emit("step", epoch=epoch, step=step, global_step=progress.global_step,
                      total_steps=progress.total_steps, loss=value, lr=lr, seconds=elapsed,
                      windows_per_s=x.shape[0] * accelerator.num_processes / elapsed)
        progress.where = f"evaluating epoch {epoch}"
        train_loss = float(np.mean(losses)) if losses else float("nan")
        val = self._evaluate(self.val_loader, split="val", epoch=epoch) if self.val_loader is not None else None
        test = (self._evaluate(self.test_loader, split="test", epoch=epoch)
                if self.config.training.test_each_epoch else None)
        # Without validation windows the training loss decides what "best" means.
        score = val.mse if val is not None else train_loss
        improved = self.stopper.update(score, epoch)
        if improved:
            self.best_state = self._trainable_state()
        self.schedule.after_epoch()
        self.emit("epoch", epoch=epoch, train_loss=train_loss, val_mse=val.mse if val else None,
                  val_mae=val.mae if val else None, test_mse=test.mse if test else None,
                  test_mae=test.mae if test else None, lr=lr)
        progress.where = f"saving the checkpoint of epoch {epoch}"
        self._save_checkpoints(epoch, improved, val.mse if val else None)
        progress.step = 0
        if self.stopper.stopped:
            self.emit("early_stop", epoch=epoch, patience=self.stopper.patience, best_epoch=self.stopper.best_epoch)

    def _evaluate(self, loader: Any, *, split: str, epoch: int, collect: bool = False, final: bool = False
                  ) -> EvalResult:
        model = self.wrapped_model
        model.eval()
        report = self._evaluation_reporter(split, epoch, len(loader), final)
        report(0)
        try:
            return evaluate_batches(model, loader, self.data, gather=self.accelerator.gather_for_metrics,
                                    collect=collect, cancel=self.cancel, on_batch=report)
        finally:
            model.train()

    def _evaluation_reporter(self, split: str, epoch: int, batches: int, final: bool) -> Any:
        """``report(batches_done)``: an ``evaluating`` event at the start, the end, and at most every half second."""
        last = {"time": 0.0}

        def report(done: int) -> None:
            now = time.perf_counter()
            if done in (0, batches) or now - last["time"] >= EVALUATION_EVENT_INTERVAL_S:
                last["time"] = now
                self.emit("evaluating", epoch=epoch, split=split, final=final, batch=done, batches=batches)

        return report

    def _save_checkpoints(self, epoch: int, improved: bool, val_mse: float | None) -> None:
        if not self.is_main or self.run_folder is None:
            return
        folder = self.run_folder.path
        if improved and self.best_state is not None:
            ckpt.save_model_weights(self.best_state, folder / MODEL_FILE, self.config, epoch, val_mse)
            self.emit("checkpoint", epoch=epoch, path=str(folder / MODEL_FILE), kind="best", val_mse=val_mse)
        state = {"epoch": epoch, "global_step": self.progress.global_step, "steps_per_epoch": self.steps_per_epoch,
                 "schedule": self.schedule.state_dict(), "early_stopping": vars(self.stopper).copy()}
        ckpt.save_training_state(folder / CHECKPOINT_FILE, self.config, self._trainable_state(),
                                 self.optimizer.state_dict(), state)
        self.emit("checkpoint", epoch=epoch, path=str(folder / CHECKPOINT_FILE), kind="last", val_mse=val_mse)

    # --- final test ----------------------------------------------------------------------------

    def _final_test(self) -> TrainingResult:
        self.progress.where = "the final test"
        if self.best_state is not None:
            self._unwrapped().load_trainable_state_dict(self.best_state)
        result = self._evaluate(self.test_loader, split="test", epoch=self.progress.epoch, collect=True, final=True)
        metrics = build_test_metrics(result, self.windows["test"], self.stopper, self._epochs_done())
        metrics.update(extra_test_metrics(self.data, result, self.test_indices))
        if self.is_main and self.run_folder is not None:
            self.run_folder.write_test_metrics(metrics)
            self.run_folder.write_predictions(predictions_arrays(result, self.test_indices, self.data))
        self.emit("finished", **metrics)
        return TrainingResult("finished", self._run_dir(), self._epochs_done(), self.stopper.best_epoch, metrics)
