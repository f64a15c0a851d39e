"""Test harness: simulated fleets in throwaway network namespaces (see netns.py and scenarios.py)."""

from __future__ import annotations
