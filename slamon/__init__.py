"""slamon: watch a leased camera fleet and turn the evidence into SLA statements."""

from __future__ import annotations

__version__ = "0.1.0"
