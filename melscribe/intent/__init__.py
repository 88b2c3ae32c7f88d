"""Reading a request: what it asks for and what it rejects (:mod:`.parser`), matched to a catalog's
descriptor vocabulary. Shared by serving and evaluation."""
