"""Putting cores on boards: UART host link (framing, bridge, host driver), board builds."""
