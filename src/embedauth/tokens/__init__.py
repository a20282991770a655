"""Access tokens: strict JWS (:mod:`.jws`), the signing key ring (:mod:`.keys`), the grants that
issue tokens (:mod:`.issuer`), verification on the hot path (:mod:`.verifier`), revocation state
(:mod:`.revocation`) and verification of another service's tokens (:mod:`.remote`)."""
