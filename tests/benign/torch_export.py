"""torch.export archives (.pt2) written by torch.export.save: program JSON, weights, constants.

An exported program keeps its serialized graph in `models/<name>.json`, raw
parameter bytes under `data/weights/`, constants (buffers, lifted tensors)
under `data/constants/` and the example inputs as a torch.save archive under
`data/sample_inputs/`.
"""

from __future__ import annotations

from pathlib import Path

from tests.benign import Writer


def _export(folder: Path) -> None:
    import torch

    class WithBuffer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)
            self.register_buffer("scale", torch.full((3,), 0.5))
            self.offset = torch.ones(3)  # a lifted tensor constant

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.linear(x)) * self.scale + self.offset

    torch.manual_seed(0)
    linear = torch.export.export(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
    torch.export.save(linear, folder / "linear.pt2")
    buffered = torch.export.export(WithBuffer(), (torch.randn(2, 4),))
    torch.export.save(buffered, folder / "buffered.pt2")


WRITERS: tuple[Writer, ...] = (Writer("torch-export", "torch.export.save", _export),)
