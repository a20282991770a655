"""What clients present: secret formats and argon2id (:mod:`.secrets`), uploaded certificates
(:mod:`.certificates`), and every way a client proves who it is (:mod:`.client_auth`)."""
