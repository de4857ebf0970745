"""dbaudit: snapshot a database, diff two snapshots, judge the change against declared expectations."""

__version__ = "0.1.0"
