"""TorchScript modules written by torch.jit.save: scripted and traced, tiny and seeded.

The scripted module raises an exception whose message names `builtins.eval`
and `os.system`, and its code carries such words in comments: TorchScript
keeps the message as a string constant in `code/`, which the scanner must
read as a string, not as a call.
"""

from __future__ import annotations

from pathlib import Path

from tests.benign import Writer


def _modules():
    import torch

    class Guarded(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # no os.system, no exec( here: only a message that mentions them
            if x.dim() > 3:
                raise RuntimeError("builtins.eval is not supported; use os.system('ls') instead")
            if x.size(-1) != 4:
                raise ValueError("import subprocess; subprocess.Popen is not a layer")
            return self.linear(x)

    class Tagged(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.note = "open('/etc/passwd') and __import__('os') are words here"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(torch.isnan(x).any()):
                raise AssertionError("open('/etc/passwd') and __import__('os') are not called")
            return torch.relu(x) * 2.0

    return Guarded, Tagged


def _scripted(folder: Path) -> None:
    import torch

    torch.manual_seed(0)
    guarded, tagged = _modules()
    torch.jit.save(torch.jit.script(guarded()), folder / "guarded.pt")
    torch.jit.save(torch.jit.script(tagged()), folder / "tagged.pt")


def _traced(folder: Path) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    torch.jit.save(torch.jit.trace(net, torch.randn(1, 3)), folder / "traced.pt")
    frozen = torch.jit.freeze(torch.jit.script(net).eval())
    torch.jit.save(frozen, folder / "frozen.pt")


WRITERS: tuple[Writer, ...] = (
    Writer("torchscript-scripted", "torch.jit.script", _scripted),
    Writer("torchscript-traced", "torch.jit.trace", _traced),
)
