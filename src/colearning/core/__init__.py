"""The core: interface types, codec, tally, driver, pool, store. No ML framework here."""
