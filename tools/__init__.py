"""Repository tools: data preparation and the Space export (not part of the package)."""
