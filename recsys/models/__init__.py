"""The ranking models: CF, the blend, the learned ranker, and the one contract they implement."""
