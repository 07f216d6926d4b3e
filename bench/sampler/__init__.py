"""A wall-clock stack sampler that bench.throughput --sample loads into the services.

The folder goes on the services' PYTHONPATH, so Python imports `sitecustomize` from it at
start-up; nothing outside bench/ changes. See sitecustomize.py.
"""
