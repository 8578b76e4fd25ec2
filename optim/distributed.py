"""Data-parallel (DDP) and sharded (FSDP2) training through ``torch.distributed``.

The trainer stays one program: every rank runs :class:`optim.trainer.Trainer`, and a
:class:`DistContext` it holds decides what is local and what is agreed. On one process the
context is a no-op and the trainer computes exactly what it computed before.

Launch (any launcher that sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``)::

    t2po train --env T2PO/ALFWorld-v0 --nproc 2 ...                 # re-runs itself under torchrun
    torchrun --standalone --nproc-per-node 8 -m optim.cli train --env T2PO/ALFWorld-v0 ...
    accelerate launch --multi_gpu --num_processes 8 -m optim.cli train --env ...
    T2PO_DIST=fsdp torchrun ...                                     # FSDP2 instead of DDP

What each rank does (the RL engineer's checklist, as verl and TRL do it):

* **Rollouts**: rank r owns a contiguous block of whole task groups (:meth:`DistContext.task_slice`
  of the step's global task seeds), so group advantages (GRPO / GiGPO / T2PO) need no
  communication. Sampling and the step's torch seed are drawn from ``(seed, step, salt, rank)``
  (:meth:`DistContext.step_seed`); rank 0 keeps the single-process seeds.
* **Update**: the minibatch plan is global (:meth:`DistContext.minibatch_plan`): the same
  ``random.Random`` draws as the single-process trainer over the global turn indices
  (rank-major), each rank keeps the turns it holds. The token-mean loss divides by the
  minibatch's *global* count of trained tokens (all-reduced), and the local loss is multiplied
  by ``world_size`` because DDP / FSDP2 average gradients over ranks: the summed gradient is the
  single-process one. Every rank makes the same number of forward/backward calls per minibatch
  (the max over ranks); a rank with fewer turns pads with zero-weight micro-batches, so the
  gradient collectives never wait for a rank that has nothing left (no hang). Gradients are
  synchronised on the last micro-batch only (``no_sync`` / ``set_requires_gradient_sync``).
* **NaN guard**: a rank whose loss or grad norm is not finite raises a flag; the flag is
  all-reduced (max) so every rank skips the same optimizer steps.
* **Logging and checkpoints**: metrics are gathered to every rank (means weighted by the
  rank's number of episodes, sums for throughput) and rank 0 writes ``metrics.jsonl``,
  TensorBoard and checkpoints. Checkpoints hold *full* (unsharded) weights and an optimizer
  state in ``torch.optim``'s own format, so a run resumes with any world size, including 1.
* **FSDP2** (``strategy="fsdp"``): ``torch.distributed.fsdp.fully_shard`` on every decoder
  layer, then on the root. For rollouts the HF decode loop needs the whole model on each rank,
  independently of the others: :meth:`DistContext.rollout_mode` all-gathers once, disables the
  post-forward reshard, and reshards afterwards. Checkpoints gather full state dicts through
  ``torch.distributed.checkpoint.state_dict`` (collective) and rank 0 writes them.
  Limits: the KL reference model is an unsharded copy on every rank; PPO's value head is not
  supported under FSDP (use DDP).

Tested on CPU over gloo (``tests/optim/test_distributed.py``): DDP and FSDP2 updates equal
the single-process update to 1e-6, checkpoint/resume, the agreed NaN skip, uneven turns.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from optim.samples import TurnSample

if TYPE_CHECKING:  # pragma: no cover
    from optim.trainer import Trainer

__all__ = [
    "DistContext",
    "Minibatch",
    "NullLogger",
    "STRATEGIES",
    "decoder_layers",
    "relaunch_with_torchrun",
]

STRATEGIES = ("ddp", "fsdp")

#: Metric keys that add up over ranks (everything else is a mean weighted by episodes).
SUMMED_METRICS = ("charts/SPS",)


@dataclass
class Minibatch:
    """One optimizer step of the global update plan, seen from one rank.

    Attributes:
        epoch: update epoch (0-based).
        index: minibatch index within the epoch.
        local: indices into this rank's sample list.
        global_size: number of turns in the minibatch over all ranks.
    """

    epoch: int
    index: int
    local: list[int]
    global_size: int


class NullLogger:
    """The :class:`optim.metrics.MetricsLogger` interface, writing nothing (ranks > 0).

    ``path`` is rank 0's ``metrics.jsonl``, so checks that read it agree on every rank.
    """

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.path = self.out / "metrics.jsonl"

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        pass

    def truncate(self, step: int) -> None:
        pass

    def plot(self, *args: Any, **kwargs: Any) -> None:
        return None


def _seed(parts: Sequence[int]) -> int:
    return int(np.random.SeedSequence([int(x) for x in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks FSDP2 shards one by one (``*DecoderLayer`` modules; also through peft)."""
    layers = [m for m in model.modules() if type(m).__name__.endswith(("DecoderLayer", "Block"))]
    # keep the outermost blocks only (a block never contains another in HF models, but be safe)
    out: list[nn.Module] = []
    for m in layers:
        if not any(m is not o and any(m is c for c in o.modules()) for o in layers):
            out.append(m)
    return out


class DistContext:
    """Where this process stands in a ``torch.distributed`` job, and the few collectives the trainer needs.

    Build it with :meth:`from_env` (torchrun / accelerate / ``t2po train --nproc``), with
    :meth:`init` (tests: ``torch.multiprocessing`` + a file rendezvous), or ``DistContext()``
    for one process (every method is then the identity and no collective runs).

    Args:
        rank: this process's rank.
        world_size: number of processes.
        strategy: ``"ddp"`` (replicated weights, gradient all-reduce) or ``"fsdp"``
            (FSDP2 ``fully_shard`` per decoder layer).
        device: ``"cpu"`` or ``"cuda"`` (the device the model lives on).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, strategy: str = "ddp", device: str = "cpu"):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy={strategy!r}: use one of {STRATEGIES}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} world_size={world_size}: need 0 <= rank < world_size")
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.strategy = strategy
        self.device = device
        self._wrapped: dict[int, nn.Module] = {}

    # ------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, strategy: str | None = None, device: str | None = None, timeout_s: float = 1800.0) -> "DistContext":
        """Join the job described by ``RANK``/``WORLD_SIZE`` (set by torchrun, accelerate launch).

        Without those variables (or with ``WORLD_SIZE=1``) returns a one-process context.
        ``strategy`` defaults to ``$T2PO_DIST`` or ``"ddp"``; the backend is NCCL on CUDA,
        gloo on CPU.
        """
        strategy = strategy or os.environ.get("T2PO_DIST", "ddp")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(0, 1, strategy, device or "cpu")
        import torch.distributed as dist

        rank = int(os.environ["RANK"])
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if not dist.is_initialized():
            backend = "nccl" if dev.startswith("cuda") else "gloo"
            if dev.startswith("cuda"):
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        return cls(rank, world, strategy, dev)

    @classmethod
    def init(
        cls,
        rank: int,
        world_size: int,
        init_method: str,
        *,
        strategy: str = "ddp",
        backend: str = "gloo",
        device: str = "cpu",
        timeout_s: float = 60.0,
    ) -> "DistContext":
        """Initialise the default process group explicitly (e.g. ``init_method="file:///tmp/rdzv"``).

        ``timeout_s`` bounds every collective: a rank that never arrives makes the others
        raise instead of blocking forever.
        """
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(
                backend, init_method=init_method, rank=rank, world_size=world_size,
                timeout=datetime.timedelta(seconds=timeout_s),
            )
        return cls(rank, world_size, strategy, device)

    def close(self) -> None:
        """Destroy the process group (if this context runs one)."""
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    # ------------------------------------------------------------ facts
    @property
    def enabled(self) -> bool:
        """More than one process: collectives run."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: writes logs and checkpoints."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.enabled and self.strategy == "fsdp"

    def step_seed(self, seed: int, step: int, salt: int) -> int:
        """Seed of draw ``salt`` at ``step`` on this rank; rank 0 gets the single-process seed."""
        parts = [seed, step, salt] if self.rank == 0 else [seed, step, salt, self.rank]
        return _seed(parts)

    def task_slice(self, n_tasks: int) -> slice:
        """This rank's contiguous block of the step's ``n_tasks`` groups (sizes differ by at most 1)."""
        if n_tasks < self.world_size:
            raise ValueError(
                f"n_tasks={n_tasks} < world_size={self.world_size}: every rank needs at least one task "
                "group; raise --n-tasks or lower --nproc"
            )
        base, extra = divmod(n_tasks, self.world_size)
        lo = self.rank * base + min(self.rank, extra)
        return slice(lo, lo + base + (1 if self.rank < extra else 0))

    def local_tasks(self, n_tasks: int) -> int:
        s = self.task_slice(n_tasks)
        return s.stop - s.start

    # ------------------------------------------------------------ collectives
    def _all_reduce(self, values: Sequence[float], op: str) -> list[float]:
        if not self.enabled:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return [float(x) for x in t.cpu()]

    def all_sum(self, *values: float) -> list[float]:
        return self._all_reduce(values, "sum")

    def all_max(self, *values: float) -> list[float]:
        return self._all_reduce(values, "max")

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (the agreed NaN skip)."""
        return bool(self.all_max(1.0 if flag else 0.0)[0] > 0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    # ------------------------------------------------------------ model wrapping
    def wrap(self, module: nn.Module) -> nn.Module:
        """The module the update runs forward/backward through: DDP, FSDP2 (in place) or itself.

        Call before the optimizer is built: FSDP2 replaces parameters by sharded DTensors.
        """
        if not self.enabled:
            return module
        if self.strategy == "fsdp" and isinstance(module, nn.Linear):
            raise ValueError("PPO's value head is not supported with FSDP (T2PO_DIST=fsdp): use DDP, or t2po/gigpo/grpo")
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [torch.cuda.current_device()] if self.device.startswith("cuda") else None
            wrapped = DDP(module, device_ids=ids)
        else:
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            mesh = init_device_mesh("cuda" if self.device.startswith("cuda") else "cpu", (self.world_size,))
            for layer in decoder_layers(module):
                fully_shard(layer, mesh=mesh)
            fully_shard(module, mesh=mesh)
            wrapped = module
        self._wrapped[id(module)] = wrapped
        return wrapped

    def set_grad_sync(self, wrapped: Sequence[nn.Module | None], sync: bool) -> None:
        """Before a micro-batch's forward: all-reduce its gradients (``sync``, the minibatch's last
        micro-batch) or accumulate them locally.

        DDP reads ``require_backward_grad_sync`` in ``forward`` (what ``no_sync()`` toggles);
        FSDP2 has ``set_requires_gradient_sync``. The last micro-batch always syncs, which leaves
        both in their default state after every minibatch.
        """
        if not self.enabled:
            return
        for m in wrapped:
            if m is None:
                continue
            if self.strategy == "ddp":
                m.require_backward_grad_sync = bool(sync)
            else:
                m.set_requires_gradient_sync(bool(sync))  # type: ignore[operator]

    def clip_grad_norm(self, params: list[nn.Parameter], max_norm: float) -> float:
        """``clip_grad_norm_`` over the (synchronised or sharded) gradients, as a float."""
        gn = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(gn, "full_tensor"):  # FSDP2: a replicated DTensor
            gn = gn.full_tensor()
        return float(gn)

    @contextlib.contextmanager
    def rollout_mode(self, model: nn.Module) -> Iterator[None]:
        """FSDP2: hold the full weights on every rank while it decodes on its own.

        The HF decode loop runs a different number of forwards on each rank; a sharded
        forward would all-gather every time and wait for the others. Unsharding once (one
        collective, same count on every rank) and switching off the post-forward reshard makes
        each rollout forward purely local.
        """
        if not self.sharded:
            yield
            return
        from torch.distributed.fsdp import FSDPModule

        mods = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for m in mods:
            m.set_reshard_after_forward(False, recurse=False)
        for m in mods:
            m.unshard()
        try:
            yield
        finally:
            for m in mods:
                m.reshard()
                m.set_reshard_after_forward(True, recurse=False)

    # ------------------------------------------------------------ update plan
    def minibatch_plan(
        self,
        n_local: int,
        rng: random.Random,
        epochs: int,
        minibatch_size: int,
        max_turns: int | None,
    ) -> tuple[list[Minibatch], int]:
        """The update's minibatches over all ranks' turns, restricted to this rank's turns.

        Reproduces the single-process trainer's draws exactly: ``rng.sample`` of the global
        indices when ``max_turns`` caps the update, then per epoch ``rng.shuffle`` and chunks of
        ``minibatch_size``. Global index = offset of this rank (sum of the lower ranks' counts)
        + local index; ``random.sample`` and ``shuffle`` depend only on the population's size,
        so on one process this is the trainer's own plan.

        Returns:
            (minibatches in order, number of turns the update uses over all ranks).
        """
        counts = [int(c) for c in self.all_gather_object(int(n_local))] if self.enabled else [int(n_local)]
        offset, total = sum(counts[: self.rank]), sum(counts)
        sel = list(range(total))
        if max_turns is not None and total > max_turns:
            sel = rng.sample(sel, max_turns)
        plan: list[Minibatch] = []
        for epoch in range(epochs):
            order = list(range(len(sel)))
            rng.shuffle(order)
            for k, m0 in enumerate(range(0, len(order), minibatch_size)):
                glob = [sel[i] for i in order[m0 : m0 + minibatch_size]]
                local = [g - offset for g in glob if offset <= g < offset + n_local]
                plan.append(Minibatch(epoch, k, local, len(glob)))
        return plan, len(sel)

    def minibatch_totals(self, n_tokens: int, n_chunks: int) -> tuple[int, int]:
        """(global trained tokens, max micro-batches over ranks) of one minibatch."""
        if not self.enabled:
            return int(n_tokens), int(n_chunks)
        tok = self.all_sum(n_tokens)[0]
        chunks = self.all_max(n_chunks)[0]
        return int(round(tok)), int(round(chunks))

    def pad_sample(self, pad_id: int) -> TurnSample:
        """A one-token sample for zero-weight padding micro-batches (advantage 0, weight 0)."""
        return TurnSample(prompt_ids=[pad_id], response_ids=[pad_id], old_logprobs=[0.0], forced_mask=[0], advantage=0.0)

    @property
    def grad_scale(self) -> float:
        """DDP and FSDP2 average gradients over ranks; scaling the local loss by this sums them."""
        return float(self.world_size)

    # ------------------------------------------------------------ metrics
    def reduce_metrics(self, metrics: dict[str, float], weight: float) -> dict[str, float]:
        """Every rank's metrics combined (identical on all ranks).

        Means are weighted by ``weight`` (the rank's episodes); :data:`SUMMED_METRICS` add up.
        """
        if not self.enabled:
            return metrics
        rows = self.all_gather_object((float(weight), dict(metrics)))
        keys: list[str] = []
        for _, m in rows:
            keys.extend(k for k in m if k not in keys)
        out: dict[str, float] = {}
        for k in keys:
            vals = [(w, m[k]) for w, m in rows if k in m and isinstance(m[k], (int, float))]
            if not vals:
                continue
            if k in SUMMED_METRICS:
                out[k] = float(sum(v for _, v in vals))
                continue
            wsum = sum(w for w, _ in vals)
            out[k] = float(sum(w * v for w, v in vals) / wsum) if wsum > 0 else float(np.mean([v for _, v in vals]))
        return out

    # ------------------------------------------------------------ checkpoints
    def checkpoint_payload(self, trainer: "Trainer") -> tuple[Callable[[str], None], dict[str, Any]]:
        """(function writing the model directory, trainer state) for rank 0 to write.

        DDP: the trainer's own (every rank holds the full weights and the same optimizer
        state). FSDP2: full state dicts gathered from the shards (a collective: every rank
        calls this), the optimizer state converted to ``torch.optim``'s id-keyed format.
        """
        if not self.sharded:
            return trainer.pm.save, trainer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        msd, osd = get_state_dict(trainer.model, trainer.optimizer, options=opts)
        state = {k: v for k, v in trainer.state_dict().items() if k != "optimizer"} if self.is_main else {}
        state["optimizer"] = _fqn_to_id_optim_state(osd) if self.is_main else None
        pm = trainer.pm

        def save_model(path: str) -> None:
            Path(path).mkdir(parents=True, exist_ok=True)
            if hasattr(pm, "tokenizer"):  # HFPolicyModel: weights from the gathered full state dict
                pm.model.save_pretrained(path, state_dict=msd, safe_serialization=True)
                pm.tokenizer.save_pretrained(path)
            else:  # other PolicyModels (tests' toy model): their own file format
                torch.save(msd, os.path.join(path, "toy.pt"))

        return save_model, state

    def finish_save(self, path: Path | None) -> Path:
        """Wait for rank 0's write; every rank returns the checkpoint path."""
        if not self.enabled:
            assert path is not None
            return path
        got = self.all_gather_object(None if path is None else str(path))[0]
        return Path(got)

    def load_sharded(self, trainer: "Trainer", model_dir: Path, state: dict[str, Any]) -> None:
        """FSDP2 resume: full weights and optimizer state (any world size wrote them) into the shards."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        msd = _read_model_dir(model_dir)
        osd = _id_to_fqn_optim_state(state["optimizer"], trainer.model, trainer.optimizer)
        set_state_dict(
            trainer.model, trainer.optimizer, model_state_dict=msd, optim_state_dict=osd,
            options=StateDictOptions(full_state_dict=True, strict=False),
        )


def _read_model_dir(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(Path(model_dir).glob("*.safetensors"))
    if files:
        sd: dict[str, torch.Tensor] = {}
        for f in files:
            sd.update(load_file(str(f)))
        return sd
    toy = Path(model_dir) / "toy.pt"
    if toy.exists():
        return torch.load(toy, map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"no *.safetensors weights under {model_dir}")


def _fqn_to_id_optim_state(osd: dict[str, Any]) -> dict[str, Any]:
    """``get_state_dict``'s parameter-name keys -> ``Optimizer.state_dict()``'s integer ids."""
    ids: dict[str, int] = {}
    groups = []
    for g in osd["param_groups"]:
        g2 = dict(g)
        g2["params"] = []
        for name in g["params"]:
            ids[name] = len(ids)
            g2["params"].append(ids[name])
        groups.append(g2)
    return {"state": {ids[n]: v for n, v in osd["state"].items()}, "param_groups": groups}


def _id_to_fqn_optim_state(osd: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    names = {id(p): n for n, p in model.named_parameters()}
    order = [names[id(p)] for g in optimizer.param_groups for p in g["params"]]
    groups = []
    k = 0
    for g in osd["param_groups"]:
        g2 = dict(g)
        g2["params"] = [order[i] for i in g["params"]]
        k += len(g["params"])
        groups.append(g2)
    if k != len(order):
        raise ValueError(f"checkpoint optimizer has {k} parameters, this model {len(order)}: resume with the same --model")
    return {"state": {order[int(i)]: v for i, v in osd["state"].items()}, "param_groups": groups}


def relaunch_with_torchrun(nproc: int, argv: Sequence[str] | None = None, *, has_env: bool = True) -> int:
    """Re-run ``t2po train ...`` as ``nproc`` processes under ``torch.distributed.run`` (torchrun).

    Used by ``t2po train --nproc N``; the child command is ``python -m optim.cli train ...``
    with ``--nproc`` removed, so each worker builds its :class:`DistContext` from the
    environment torchrun sets. Returns torchrun's exit status.
    """
    import subprocess
    import sys

    if nproc < 1:
        raise SystemExit(f"error: --nproc must be >= 1, got {nproc}")
    if not has_env:
        raise SystemExit("error: --nproc needs --env: the embedded demo runs on one process")
    if os.environ.get("WORLD_SIZE") not in (None, "1"):
        raise SystemExit("error: --nproc inside a torchrun/accelerate job: drop --nproc, the launcher already "
                         "started the processes")
    argv = list(sys.argv[1:] if argv is None else argv)
    cleaned: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        cleaned.append(a)
    if cleaned and cleaned[0] != "train":
        # `t2po train ...` -> argv starts with "train"; anything else is a programming error
        cleaned = cleaned[cleaned.index("train"):] if "train" in cleaned else ["train", *cleaned]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "optim.cli", *cleaned]
    print("launching:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)
