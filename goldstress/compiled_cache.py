"""Importing this module loads, from numba's on-disk cache, the compiled functions of every
module imported before it (:func:`goldstress.execution.load_cached_compiled`). The forkserver
of local Dask workers imports it last, so the workers forked from it run the compiled engine
at their first task (a forkserver's preload can only import)."""

from goldstress.execution import load_cached_compiled

load_cached_compiled()
