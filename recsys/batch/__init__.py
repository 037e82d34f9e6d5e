"""The batch step: builds a shop's models and tables out of core (see docs/scaling.md, "Batch and serving")."""
