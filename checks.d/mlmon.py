"""The file the Datadog Agent loads from its checks.d/: mlmon's check, installed with ``pip install 'mlmon[agent]'``
into the Agent's embedded Python. Its configuration is conf.d/mlmon.d/conf.yaml, the file ``mlmon run`` reads."""

from mlmon.agent_check import MlmonCheck

__all__ = ["MlmonCheck"]
__version__ = "0.1.0"
