"""What every plan over windows of a sequence (conv1d, pooling) reads off its ``window``."""

from __future__ import annotations

__all__ = ["Windowed"]


class Windowed:
    """Mixin for a plan with a ``window`` (:class:`~hwnn.ref.windows.Window`): its geometry."""

    @property
    def kernel_size(self) -> int:
        return self.window.kernel_size

    @property
    def stride(self) -> int:
        return self.window.stride

    @property
    def dilation(self) -> int:
        return self.window.dilation

    @property
    def padding(self) -> tuple[int, int]:
        """``(pad_left, pad_right)`` zero steps."""
        return self.window.padding

    @property
    def receptive_field(self) -> int:
        return self.window.receptive_field

    def out_length(self, steps: int) -> int:
        """Output steps for ``steps`` input steps (:meth:`Window.out_length`; 0 if too short)."""
        return self.window.out_length(steps)
