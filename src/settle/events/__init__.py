"""Events: what happened to an object, recorded with the change that made it happen."""
