"""The stylerec web service: FastAPI routes over the recommender, the palette and the render queue."""
