"""mlmon: an ML-monitoring agent that computes prediction metrics in the warehouse and sends them to Datadog."""

__version__ = "0.1.0"

__all__ = ["__version__"]
