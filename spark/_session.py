"""Starting Spark: the optional dependency, Java, and a local session with sensible defaults."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ChurnlensError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
DEFAULT_MASTER = "local[2]"
MASTER_ENV = "CHURNLENS_SPARK_MASTER"
INSTALL_HINT = (
    "the Spark engine needs the optional `spark` extra: pip install 'churnlens[spark]' "
    "(or, in a checkout, uv sync --extra spark)"
)


def require_pyspark() -> Any:
    """Import pyspark (and sqlglot), or fail with how to install them."""
    try:
        import pyspark
        import sqlglot  # noqa: F401
    except ImportError as err:
        raise ChurnlensError(f"{INSTALL_HINT} ({err.name} is not installed)") from None
    return pyspark


def java_home() -> str | None:
    """``JAVA_HOME``, or the installation of the ``java`` on the PATH (None when there is none)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java is None:
        return None
    # .../jvm/java-17-openjdk-amd64/bin/java -> .../jvm/java-17-openjdk-amd64
    return str(Path(java).resolve().parent.parent)


def default_master() -> str:
    """``$CHURNLENS_SPARK_MASTER`` or ``local[2]``."""
    return os.environ.get(MASTER_ENV) or DEFAULT_MASTER


def quiet_pandas_warning() -> None:
    """PySpark warns on every conversion that pandas 3 is "not yet fully supported".

    churnlens's parity tests check the results it gets, so the warning is noise here.
    """
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )


def session(
    master: str = DEFAULT_MASTER,
    app: str = "churnlens",
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """A Spark session (the active one is reused) with churnlens's defaults.

    Defaults: UTC session time zone (timestamps are naive UTC throughout churnlens), Arrow for
    pandas conversions, few shuffle partitions on a local master, driver memory from
    ``$CHURNLENS_SPARK_DRIVER_MEMORY`` (default 2g), Python workers on this interpreter, WARN
    logs. ``conf`` overrides any of them.

    Args:
        master: Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``, ...).
        app: application name.
        conf: extra Spark settings.

    Raises:
        ChurnlensError: pyspark is not installed, or no Java runtime is found.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    home = java_home()
    if home is None:
        raise ChurnlensError(
            "Spark needs a Java runtime (17 or later): install one or set JAVA_HOME"
        )
    os.environ.setdefault("JAVA_HOME", home)
    # Executors run the indicator functions: the same interpreter (and packages) as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    quiet_pandas_warning()
    local = master.startswith("local")
    settings: dict[str, str] = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.shuffle.partitions": "4" if local else "200",
        "spark.default.parallelism": "4" if local else "200",
        "spark.driver.memory": os.environ.get("CHURNLENS_SPARK_DRIVER_MEMORY", "2g"),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN",
        "spark.executorEnv.PYSPARK_PYTHON": os.environ["PYSPARK_PYTHON"],
    }
    if local:
        settings["spark.driver.bindAddress"] = "127.0.0.1"
        settings["spark.driver.host"] = "127.0.0.1"
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # getOrCreate returns an existing session as it is: churnlens's semantics need UTC.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    log.info("spark %s on %s", spark.version, master)
    return spark
