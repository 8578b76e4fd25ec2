#!/usr/bin/env bash
# T2PO on ALFWorld with Qwen2.5-1.5B-Instruct on one node of 8 GPUs: the paper's setting.
#
# Settings follow the released pipeline (examples/embody_agent_trainer/train_alfworld.sh of
# WillDreamer/T2PO-ICML, L25-L104): 16 tasks x group 8 per step, 50-turn episodes, responses up to
# 500 tokens, TTI cap 450 think tokens, TDS max 2 tries, lr 1e-6, KL 0.01 (low-var), gamma 0.95,
# invalid-action penalty 0.1, GiGPO step weight 1, minibatch 256 turn rows. The t2po preset holds
# those defaults (optim/config.py); this file sets the model, the hardware and the batch split.
#
# Each of the 8 ranks owns 2 whole task groups (16 episodes) and decodes them with HFPolicy on
# its GPU; the update is DDP (default) or FSDP2 (T2PO_DIST=fsdp). See docs/distributed.md.
#
# Expected memory per GPU (computed from the model size, docs/distributed.md#memory):
#   N = 1.54e9 parameters (28 layers, hidden 1536, vocab 151936, tied embeddings)
#   trainer weights fp32 4N = 6.2 GB, grads 4N = 6.2 GB, AdamW m+v 8N = 12.3 GB,
#   KL reference (fp32 copy of the initial model) 4N = 6.2 GB
#   DDP : 16N = 24.6 GB (+ reference 6.2)                                  = 30.8 GB static
#   FSDP2: 16N / 8 = 3.1 GB (+ reference 6.2, + full weights held during rollouts 6.2) = 15.4 GB
#   activations, microbatch_size=4 rows of <= 2548 tokens (2048 prompt + 500 response), bf16,
#     no checkpointing: 34 * s * h * L bytes/row = 34*2548*1536*28 = 3.7 GB/row -> 14.9 GB
#   logits of one micro-batch in fp32 for the log-softmax (+ grad): 2 * 4*2548*151936*4 B = 12.4 GB
#   HF decode KV cache, 16 episodes x 2548 tokens, bf16: 16*2548*28.7 kB = 1.2 GB
#   => DDP about 59 GB, FSDP2 about 44 GB peak: an 80 GB A100/H100 fits either; on 40 GB cards use
#      FSDP2 with --set microbatch_size=2 (about 30 GB).
#
# Usage: bash recipes/alfworld_qwen2.5_1.5b_8gpu.sh /path/to/Qwen2.5-1.5B-Instruct [extra t2po train args]
set -euo pipefail
MODEL=${1:?usage: $0 MODEL_DIR [extra args]}
shift
NPROC=${NPROC:-8}
OUT=${OUT:-runs/t2po-alfworld-qwen2.5-1.5b-8gpu}
export T2PO_DIST=${T2PO_DIST:-ddp}         # or fsdp
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}

exec torchrun --standalone --nproc-per-node="$NPROC" -m optim.cli train \
    --env T2PO/ALFWorld-v0 --algo t2po --model "$MODEL" --device cuda \
    --n-tasks 16 --group-size 8 --max-turns 50 --max-new-tokens 500 --lr 1e-6 \
    --set microbatch_size=4 --set minibatch_size=256 --set checkpoint_every=10 \
    --out "$OUT" "$@"
# The same with accelerate (it starts torchrun underneath; GPUs only, unverified here):
#   accelerate launch --multi_gpu --num_processes 8 -m optim.cli train --env T2PO/ALFWorld-v0 ...
# or, without a launcher line: t2po train --nproc 8 --env T2PO/ALFWorld-v0 ... (same arguments)
