"""Workflow implementations the runner executes, one class per workflow type.

`workflows.registry` maps each workflow type to its class; `base` says what a class
provides.
"""
