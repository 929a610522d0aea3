"""reconciler: declare the channel data of Fyno user profiles in YAML; plan and apply it."""

from __future__ import annotations

__version__ = "0.1.0"
