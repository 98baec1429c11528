"""omendex in ann-benchmarks: the harness's ``BaseANN`` over ``omendex.ann.OmendexANN`` (build
on every core, queries one at a time on one thread, as the harness measures them)."""

from omendex.ann import OmendexANN

from ..base.module import BaseANN


class Omendex(OmendexANN, BaseANN):
    """``fit``, ``set_query_arguments``, ``query``, ``batch_query``, ``get_batch_results`` and
    ``get_memory_usage`` from ``OmendexANN``; the rest of the interface from ``BaseANN``."""
