"""The Spark sessions ``engine: spark`` runs in: one JVM, a child session per warehouse config.

A :class:`SparkSessions` is passed to :class:`~mlmon.warehouse.engines.SparkEngine` (and to
:func:`~mlmon.warehouse.engines.open_engine` as ``spark``) by whoever opens the engine. A process
hosts one SparkContext, so the default for both is one holder per process, :data:`SPARK`: the agent,
``mlmon plan``, ``check`` and ``backfill`` share it, it stops at exit, and tests stop it with
``SPARK.stop()``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from mlmon.config import SparkWarehouse
from mlmon.warehouse.engines.base import WarehouseError


class SparkSessions:
    """The Spark a process's engines share: one JVM, started on first use and stopped at exit.

    The agent opens an engine per job and run; a JVM per open would take seconds each time. Each
    distinct warehouse config gets a child session of its own (``newSession``: its own temporary views
    and SQL settings, the shared SparkContext), so two instances' Parquet views cannot collide and
    closing an engine never stops what another engine uses.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._root: Any = None
        self._master: str | None = None
        self._children: dict[str, Any] = {}
        self._stop_at_exit = False

    def session(self, warehouse: SparkWarehouse) -> Any:
        """A live session for ``warehouse``. Raises :class:`WarehouseError`."""
        with self._lock:
            root = self._start(warehouse)
            key = warehouse.model_dump_json()
            child = self._children.get(key)
            if child is None:
                child = root.newSession()
                _spark_settings(root, child, warehouse)
                self._children[key] = child
            return child

    def _start(self, warehouse: SparkWarehouse) -> Any:
        if self._root is not None and self._root.sparkContext._jsc is not None:
            if warehouse.master != self._master:
                raise WarehouseError(
                    f"warehouse -> master: this process already runs Spark with master {self._master}; "
                    f"one process runs one Spark master (run one agent per master)"
                )
            return self._root
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise WarehouseError("engine spark needs PySpark: pip install 'mlmon[spark]'") from None
        builder = SparkSession.builder.appName("mlmon").master(warehouse.master)
        for key, value in {**_SPARK_DEFAULTS, **warehouse.conf}.items():
            builder = builder.config(key, _spark_value(value))
        main = threading.current_thread() is threading.main_thread()
        saved = signal.getsignal(signal.SIGINT) if main else None
        try:
            with warnings.catch_warnings():
                # PySpark warns about the pandas version when it first converts a Python value, from a
                # module it imports lazily; mlmon hands Spark no pandas objects
                warnings.simplefilter("ignore", FutureWarning)
                root = builder.getOrCreate()
                with contextlib.suppress(ImportError):
                    import pyspark.testing.utils  # noqa: F401
        except Exception as exc:  # Java missing, bad master URL, port taken: PySpark raises several kinds
            raise WarehouseError(f"cannot start spark (master {warehouse.master}): {spark_message(exc)}") from None
        finally:
            # SparkContext installs its own SIGINT handler (cancel jobs, KeyboardInterrupt); mlmon's own
            # handler stops at a safe point instead
            if main and saved is not None:
                signal.signal(signal.SIGINT, saved)
        root.sparkContext.setLogLevel("ERROR")
        # py4j logs every connection it opens and closes at INFO (some during interpreter shutdown)
        logging.getLogger("py4j").setLevel(logging.WARNING)
        if not self._stop_at_exit:
            atexit.register(self.stop)
            self._stop_at_exit = True
        self._root, self._master, self._children = root, warehouse.master, {}
        return root

    def stop(self) -> None:
        """Stop the process's Spark (at exit; tests may call it)."""
        with self._lock:
            if self._root is not None:
                self._root.stop()
            self._root, self._master, self._children = None, None, {}


#: settings mlmon starts Spark with (the config's ``conf`` overrides them): quiet, no UI, UTC
_SPARK_DEFAULTS: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
}


def _spark_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _spark_settings(root: Any, child: Any, warehouse: SparkWarehouse) -> None:
    """Apply the warehouse's runtime settings to its child session; static ones it sets must match the
    running JVM's (mlmon's own static defaults do not: a session started elsewhere keeps its UI)."""
    for key, value in {**_SPARK_DEFAULTS, **warehouse.conf}.items():
        wanted = _spark_value(value)
        if root.conf.isModifiable(key):
            child.conf.set(key, wanted)
            continue
        current = root.sparkContext.getConf().get(key, None)
        if key in warehouse.conf and current is not None and current != wanted:
            raise WarehouseError(
                f"warehouse -> conf -> {key}: a static Spark setting cannot change in the running session "
                f"(this process started Spark with {current}); give every spark instance the same value"
            )
    if child.conf.get("spark.sql.session.timeZone") != "UTC":
        raise WarehouseError("warehouse -> conf -> spark.sql.session.timeZone: mlmon reads naive timestamps "
                             "as UTC; leave the session time zone at UTC")


def spark_message(exc: BaseException) -> str:
    """The first line of a Spark error (the rest is a query plan or a JVM stack trace)."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)  # Py4JJavaError: "An error occurred while calling o42..."
    if java is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone
            text = str(java.toString())
    text = text.strip()
    return (text.splitlines() or [type(exc).__name__])[0].strip()


#: the process's Spark: the default holder of :class:`~mlmon.warehouse.engines.SparkEngine` and
#: :func:`~mlmon.warehouse.engines.open_engine` (a process hosts one SparkContext; see the module's docstring)
SPARK = SparkSessions()
