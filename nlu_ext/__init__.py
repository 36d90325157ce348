"""Rasa extensions: the custom NLU component (pollution_type) and the traced REST channel."""
