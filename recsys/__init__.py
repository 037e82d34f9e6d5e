"""What to show whom: catalog, collaborative filtering, hybrid ranking, evaluation, API and CLI."""
