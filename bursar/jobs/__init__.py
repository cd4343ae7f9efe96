"""Jobs: each reads the store and clients it is given and returns a Summary."""
