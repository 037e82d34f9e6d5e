"""Opening a shop (the one door to its store, style index, encoder and models) and the demo shop."""
