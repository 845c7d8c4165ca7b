"""asv benchmarks of skinfinite (run from ``asv_bench/``, see ``asv.conf.json``)."""
