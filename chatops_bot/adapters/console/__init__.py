"""The terminal adapter: `/access …` lines in, plain-text replies out; for trying a config and the demo."""
