"""runplane: a lifecycle control plane for long-lived runtimes."""

__version__ = "0.1.0"
