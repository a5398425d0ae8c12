"""The catalogue of problem types, served at `/problems/<slug>`."""
