"""Whole Fv models: framework library, template choice, assembly."""
