"""Segments and customer understanding: condition trees compiled to SQL, live membership, scores."""
