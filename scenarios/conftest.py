"""Scenario defaults. Each scenario module covers one fault family and ends with the
checker's verdict, which must be ``valid``."""
