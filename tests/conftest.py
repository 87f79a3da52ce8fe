"""Test-wide settings: one intra-op thread (tiny tensors; avoids oversubscribing CI's 2 cores)."""

import torch

torch.set_num_threads(1)
