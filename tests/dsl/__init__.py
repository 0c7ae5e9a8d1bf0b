"""Tests of the expression language (engine/dsl)."""
