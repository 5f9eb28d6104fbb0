"""One module per family of session strategies."""
