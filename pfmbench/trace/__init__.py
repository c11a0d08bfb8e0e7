"""Traces: the Parquet schema, reading into arrays, synthesis and importers."""

from .schema import TRACE_COLUMNS, TraceArrays, read_trace, trace_problems

__all__ = ["TRACE_COLUMNS", "TraceArrays", "read_trace", "trace_problems"]
