"""Turn results into text for people (JSON forms live on the result objects as `as_dict`)."""
